//! Application code that depends on the `KeyEncrypter` trait, not on `Kms`:
//! run against a key handle, then against a fake a test would swap in.
//!
//! `cargo run --example key_handle`

use std::io::{Read, Write};
use std::sync::Mutex;

use localkms::{
    CiphertextBlob, DataKeySpec, EncryptionContext, Error, KeyEncrypter, Kms, SecretBytes,
};

/// The application: seals orders and archives, given something that
/// encrypts with a key.
struct Orders<'k> {
    key: &'k dyn KeyEncrypter,
}

impl Orders<'_> {
    fn context(customer: &str) -> localkms::Result<EncryptionContext> {
        EncryptionContext::from_pairs([("customer", customer)])
    }

    fn seal(&self, customer: &str, order: &str) -> localkms::Result<CiphertextBlob> {
        self.key
            .encrypt(order.as_bytes(), &Self::context(customer)?)
    }

    fn open(&self, customer: &str, blob: &[u8]) -> localkms::Result<String> {
        let p = self.key.decrypt(blob, &Self::context(customer)?)?;
        Ok(String::from_utf8_lossy(p.expose_secret()).into_owned())
    }

    fn archive(&self, data: &[u8]) -> localkms::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut w = self
            .key
            .envelope_writer(&EncryptionContext::empty(), &mut out)?;
        w.write_all(data)?;
        w.finish()?;
        Ok(out)
    }

    fn restore(&self, envelope: &[u8]) -> localkms::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.key
            .envelope_reader(&EncryptionContext::empty(), &mut &envelope[..])?
            .read_to_end(&mut out)?;
        Ok(out)
    }
}

/// What a unit test swaps in: no cryptography, and a log of the calls.
#[derive(Default)]
struct FakeKey {
    calls: Mutex<Vec<String>>,
}

impl FakeKey {
    fn log(&self, what: &str) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(what.to_owned());
        }
    }
}

impl KeyEncrypter for FakeKey {
    fn encrypt(&self, plaintext: &[u8], _: &EncryptionContext) -> localkms::Result<CiphertextBlob> {
        self.log("encrypt");
        Ok(CiphertextBlob::from(plaintext.to_vec()))
    }

    fn decrypt(&self, ciphertext: &[u8], _: &EncryptionContext) -> localkms::Result<SecretBytes> {
        self.log("decrypt");
        Ok(SecretBytes::from(ciphertext.to_vec()))
    }

    fn generate_data_key(
        &self,
        spec: DataKeySpec,
        _: &EncryptionContext,
    ) -> localkms::Result<(SecretBytes, CiphertextBlob)> {
        self.log("generate_data_key");
        let k = vec![1u8; spec.byte_len()];
        Ok((SecretBytes::from(k.clone()), CiphertextBlob::from(k)))
    }

    fn generate_envelope_key(
        &self,
        _: &EncryptionContext,
    ) -> localkms::Result<(SecretBytes, CiphertextBlob)> {
        self.log("generate_envelope_key");
        Ok((
            SecretBytes::from(vec![2u8; 32]),
            CiphertextBlob::from(b"fake".to_vec()),
        ))
    }

    fn open_envelope_key(
        &self,
        _version: u8,
        blob: &[u8],
        _: &EncryptionContext,
    ) -> localkms::Result<SecretBytes> {
        self.log("open_envelope_key");
        match blob {
            b"fake" => Ok(SecretBytes::from(vec![2u8; 32])),
            _ => Err(Error::DecryptionFailed),
        }
    }
}

fn exercise(name: &str, key: &dyn KeyEncrypter) -> localkms::Result<()> {
    let orders = Orders { key };
    let blob = orders.seal("alice", "3 apples")?;
    assert_eq!(orders.open("alice", &blob)?, "3 apples");
    let archived = orders.archive(&vec![7u8; 200_000])?;
    assert_eq!(orders.restore(&archived)?, vec![7u8; 200_000]);
    println!(
        "{name}: order blob {} bytes, archive {} bytes",
        blob.len(),
        archived.len()
    );
    Ok(())
}

fn main() -> localkms::Result<()> {
    let kms = Kms::in_memory()?;
    let first = kms.create_key(&Default::default())?.key_id;
    kms.create_alias("alias/orders", &first)?;
    let handle = kms.key("alias/orders");
    exercise("key handle", &handle)?;

    // The handle resolves its alias on every call: move the alias, and new
    // blobs use the new key, while blobs of the old key are refused by it.
    let old = handle.encrypt(b"old", &EncryptionContext::empty())?;
    let second = kms.create_key(&Default::default())?.key_id;
    kms.update_alias("alias/orders", &second)?;
    assert_eq!(handle.key_id()?, second);
    let refused = handle.decrypt(&old, &EncryptionContext::empty());
    println!(
        "after the alias moved: {}",
        refused
            .err()
            .map_or_else(|| "opened".into(), |e| e.to_string())
    );

    let fake = FakeKey::default();
    exercise("fake", &fake)?;
    println!(
        "fake saw: {:?}",
        fake.calls.lock().map(|c| c.clone()).unwrap_or_default()
    );
    Ok(())
}
