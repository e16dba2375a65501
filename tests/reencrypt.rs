//! ReEncrypt and GenerateDataKeyWithoutPlaintext (SPEC sections 6 and 8), on
//! every keystore backend.

mod common;
mod support;

use localkms::{
    DECRYPTION_FAILED_MESSAGE, DataKeySpec, EncryptionContext, Error, GenerateDataKeyRequest, Kms,
    ManualClock, PlaintextKind,
};

on_every_backend!(
    moves_text_across_keys_and_contexts,
    keeps_the_data_key_kind,
    moves_a_blob_to_the_newest_version,
    chains_of_moves_round_trip,
    destination_accepts_aliases_and_arns,
    missing_parameters_come_first,
    source_is_checked_before_destination,
    destination_state_table,
    source_failures_are_decrypt_failures,
    data_key_without_plaintext,
    data_key_without_plaintext_rules,
);

fn none() -> EncryptionContext {
    EncryptionContext::empty()
}

fn ctx(json: &str) -> EncryptionContext {
    EncryptionContext::from_json(json).expect("context")
}

fn new_key(kms: &Kms) -> String {
    kms.create_key(&Default::default()).expect("create").key_id
}

fn primary(kms: &Kms, key: &str) -> String {
    kms.describe_key(key).expect("describe").primary_key_version
}

/// The kind byte of a v1 blob (docs/FORMAT.md).
fn kind_byte(blob: &[u8]) -> u8 {
    blob[1]
}

fn moves_text_across_keys_and_contexts(kms: Kms, _clock: ManualClock) {
    let (a, b) = (new_key(&kms), new_key(&kms));
    let (src, dst) = (ctx(r#"{"from":"a"}"#), ctx(r#"{"to":"b","x":"1"}"#));
    let sealed = kms.encrypt(&a, b"move me", &src).expect("encrypt");
    let moved = kms
        .re_encrypt(&sealed.ciphertext_blob, &b, &src, &dst)
        .expect("re-encrypt");
    assert_eq!(moved.key_id, b);
    assert_eq!(moved.key_version_id, primary(&kms, &b));
    assert_eq!(moved.source_key_id, a);
    assert_eq!(moved.source_key_version_id, sealed.key_version_id);
    assert_ne!(moved.ciphertext_blob, sealed.ciphertext_blob);
    let d = kms.decrypt(&moved.ciphertext_blob, &dst).expect("decrypt");
    assert_eq!(d.key_id, b);
    assert_eq!(d.key_version_id, moved.key_version_id);
    assert_eq!(d.kind, PlaintextKind::Text);
    assert_eq!(d.plaintext.expose_secret(), b"move me");
    assert_eq!(d.wire_plaintext().as_str(), "move me");
    assert_eq!(kind_byte(&moved.ciphertext_blob), 0x01);
    // Only the destination context opens it; the source blob still opens.
    for wrong in [src.clone(), none(), ctx(r#"{"to":"b"}"#)] {
        assert_eq!(
            kms.decrypt(&moved.ciphertext_blob, &wrong).unwrap_err(),
            Error::DecryptionFailed
        );
    }
    let d = kms.decrypt(&sealed.ciphertext_blob, &src).expect("source");
    assert_eq!(d.plaintext.expose_secret(), b"move me");
    // Same key, new context only; key order in the context does not matter.
    let same = kms
        .re_encrypt(
            &moved.ciphertext_blob,
            &b,
            &ctx(r#"{"x":"1","to":"b"}"#),
            &none(),
        )
        .expect("context only");
    assert_eq!(same.key_id, b);
    assert_eq!(same.source_key_id, b);
    let d = kms
        .decrypt(&same.ciphertext_blob, &none())
        .expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), b"move me");
}

fn keeps_the_data_key_kind(kms: Kms, _clock: ManualClock) {
    let (a, b) = (new_key(&kms), new_key(&kms));
    for req in [
        GenerateDataKeyRequest::default(),
        GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128),
        GenerateDataKeyRequest::with_number_of_bytes(1),
        GenerateDataKeyRequest::with_number_of_bytes(1024).context(ctx(r#"{"k":"v"}"#)),
    ] {
        let dk = kms.generate_data_key(&a, &req).expect("data key");
        let wire = dk.plaintext.to_base64();
        let moved = kms
            .re_encrypt(
                &dk.ciphertext_blob,
                &b,
                &req.encryption_context,
                &ctx(r#"{"moved":"1"}"#),
            )
            .expect("re-encrypt");
        assert_eq!(kind_byte(&moved.ciphertext_blob), 0x02);
        let d = kms
            .decrypt(&moved.ciphertext_blob, &ctx(r#"{"moved":"1"}"#))
            .expect("decrypt");
        assert_eq!(d.kind, PlaintextKind::DataKey);
        assert_eq!(d.plaintext.expose_secret(), dk.plaintext.expose_secret());
        // What wire Decrypt returns: the same base64 text GenerateDataKey gave.
        assert_eq!(d.wire_plaintext().as_str(), wire.as_str());
    }
    // A data key made without plaintext moves the same way.
    let sealed = kms
        .generate_data_key_without_plaintext(&a, &GenerateDataKeyRequest::default())
        .expect("without plaintext");
    let original = kms
        .decrypt(&sealed.ciphertext_blob, &none())
        .expect("decrypt");
    let moved = kms
        .re_encrypt(&sealed.ciphertext_blob, &b, &none(), &none())
        .expect("re-encrypt");
    let d = kms
        .decrypt(&moved.ciphertext_blob, &none())
        .expect("decrypt");
    assert_eq!(d.kind, PlaintextKind::DataKey);
    assert_eq!(d.wire_plaintext(), original.wire_plaintext());
}

fn moves_a_blob_to_the_newest_version(kms: Kms, _clock: ManualClock) {
    let key = new_key(&kms);
    let old = kms.encrypt(&key, b"v1 data", &none()).expect("encrypt");
    let v2 = kms.create_key_version(&key).expect("rotate").key_version_id;
    let moved = kms
        .re_encrypt(&old.ciphertext_blob, &key, &none(), &none())
        .expect("re-encrypt");
    assert_eq!(moved.key_version_id, v2);
    assert_eq!(moved.source_key_version_id, old.key_version_id);
    let d = kms
        .decrypt(&moved.ciphertext_blob, &none())
        .expect("decrypt");
    assert_eq!(d.key_version_id, v2);
    assert_eq!(d.plaintext.expose_secret(), b"v1 data");
}

fn chains_of_moves_round_trip(kms: Kms, _clock: ManualClock) {
    let keys: Vec<String> = (0..3).map(|_| new_key(&kms)).collect();
    let text: Vec<u8> = (0..=255u8).cycle().take(6144).collect();
    let mut blob = kms
        .encrypt(&keys[0], &text, &ctx(r#"{"hop":"0"}"#))
        .expect("encrypt")
        .ciphertext_blob;
    for hop in 1..=6 {
        let from = ctx(&format!(r#"{{"hop":"{}"}}"#, hop - 1));
        let to = ctx(&format!(r#"{{"hop":"{hop}"}}"#));
        let moved = kms
            .re_encrypt(&blob, &keys[hop % 3], &from, &to)
            .expect("hop");
        assert_eq!(moved.source_key_id, keys[(hop - 1) % 3]);
        assert_eq!(moved.key_id, keys[hop % 3]);
        blob = moved.ciphertext_blob;
    }
    let d = kms.decrypt(&blob, &ctx(r#"{"hop":"6"}"#)).expect("decrypt");
    assert_eq!(d.key_id, keys[0]);
    assert_eq!(d.plaintext.expose_secret(), &text[..]);
}

fn destination_accepts_aliases_and_arns(kms: Kms, _clock: ManualClock) {
    let (a, b) = (new_key(&kms), new_key(&kms));
    kms.create_alias("alias/destination", &b).expect("alias");
    let sealed = kms.encrypt(&a, b"x", &none()).expect("encrypt");
    let arn = kms.describe_key(&b).expect("describe").arn;
    let alias_arn = format!(
        "acs:kms:cn-hangzhou:{}:alias/destination",
        localkms::DEFAULT_ACCOUNT_ID
    );
    for dest in [
        b.as_str(),
        arn.as_str(),
        "alias/destination",
        alias_arn.as_str(),
    ] {
        let moved = kms
            .re_encrypt(&sealed.ciphertext_blob, dest, &none(), &none())
            .expect(dest);
        assert_eq!(moved.key_id, b, "{dest}");
    }
    let e = kms
        .re_encrypt(&sealed.ciphertext_blob, "alias/nowhere", &none(), &none())
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.AliasNotFound");
    let e = kms
        .re_encrypt(&sealed.ciphertext_blob, "not-a-key", &none(), &none())
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyNotFound");
    assert!(e.to_string().contains("not-a-key"), "{e}");
}

fn missing_parameters_come_first(kms: Kms, _clock: ManualClock) {
    let a = new_key(&kms);
    let sealed = kms.encrypt(&a, b"x", &none()).expect("encrypt");
    assert_eq!(
        kms.re_encrypt(b"", "", &none(), &none()).unwrap_err(),
        Error::MissingParameter("CiphertextBlob")
    );
    assert_eq!(
        kms.re_encrypt(b"", &a, &none(), &none()).unwrap_err(),
        Error::MissingParameter("CiphertextBlob")
    );
    assert_eq!(
        kms.re_encrypt(&sealed.ciphertext_blob, "", &none(), &none())
            .unwrap_err(),
        Error::MissingParameter("DestinationKeyId")
    );
    assert_eq!(
        kms.re_encrypt(b"not base64!", "", &none(), &none())
            .unwrap_err(),
        Error::MissingParameter("DestinationKeyId")
    );
}

fn source_is_checked_before_destination(kms: Kms, _clock: ManualClock) {
    let (a, b) = (new_key(&kms), new_key(&kms));
    let sealed = kms.encrypt(&a, b"x", &none()).expect("encrypt");
    kms.disable_key(&b).expect("disable b");
    // A bad source wins over a bad destination, of every kind.
    for dest in [b.as_str(), "alias/nowhere", "not-a-key"] {
        assert_eq!(
            kms.re_encrypt(&[0, 0, 0], dest, &none(), &none())
                .unwrap_err(),
            Error::DecryptionFailed,
            "{dest}"
        );
        assert_eq!(
            kms.re_encrypt(&sealed.ciphertext_blob, dest, &ctx(r#"{"a":"b"}"#), &none())
                .unwrap_err(),
            Error::DecryptionFailed,
            "{dest}"
        );
    }
    kms.disable_key(&a).expect("disable a");
    let e = kms
        .re_encrypt(&sealed.ciphertext_blob, "alias/nowhere", &none(), &none())
        .unwrap_err();
    assert_eq!(e.code(), "Rejected.Disabled");
    assert!(
        matches!(&e, Error::Rejected { key_id, .. } if *key_id == a),
        "{e:?}"
    );
    // Source fine, destination disabled: the destination's rejection.
    kms.enable_key(&a).expect("enable a");
    let e = kms
        .re_encrypt(&sealed.ciphertext_blob, &b, &none(), &none())
        .unwrap_err();
    assert_eq!(e.code(), "Rejected.Disabled");
    assert!(
        matches!(&e, Error::Rejected { key_id, .. } if *key_id == b),
        "{e:?}"
    );
}

fn destination_state_table(kms: Kms, _clock: ManualClock) {
    let a = new_key(&kms);
    let sealed = kms.encrypt(&a, b"x", &none()).expect("encrypt");
    let blob = sealed.ciphertext_blob.as_bytes();
    let disabled = new_key(&kms);
    kms.disable_key(&disabled).expect("disable");
    let pending_deletion = new_key(&kms);
    kms.schedule_key_deletion(&pending_deletion, 7)
        .expect("schedule");
    let pending_import = support::external(&kms);
    for (dest, code) in [
        (&disabled, "Rejected.Disabled"),
        (&pending_deletion, "Rejected.PendingDeletion"),
        (&pending_import, "Rejected.PendingImport"),
    ] {
        let e = kms.re_encrypt(blob, dest, &none(), &none()).unwrap_err();
        assert_eq!(e.code(), code);
        assert_eq!(e.http_status(), 409);
    }
    // And the source's state, too.
    kms.schedule_key_deletion(&a, 7).expect("schedule a");
    let ok = new_key(&kms);
    assert_eq!(
        kms.re_encrypt(blob, &ok, &none(), &none())
            .unwrap_err()
            .code(),
        "Rejected.PendingDeletion"
    );
}

fn source_failures_are_decrypt_failures(kms: Kms, _clock: ManualClock) {
    let (a, b) = (new_key(&kms), new_key(&kms));
    let sealed = kms
        .encrypt(&a, b"x", &ctx(r#"{"ab":"c"}"#))
        .expect("encrypt");
    let e = kms
        .re_encrypt(&sealed.ciphertext_blob, &b, &ctx(r#"{"a":"bc"}"#), &none())
        .unwrap_err();
    assert_eq!(e, Error::DecryptionFailed);
    assert_eq!(e.code(), "InvalidParameter");
    assert_eq!(e.to_string(), DECRYPTION_FAILED_MESSAGE);
    // Tampering anywhere after the ids.
    let bytes = sealed.ciphertext_blob.to_vec();
    for i in [0, 1, 80, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[i] ^= 1;
        assert_eq!(
            kms.re_encrypt(&t, &b, &ctx(r#"{"ab":"c"}"#), &none())
                .unwrap_err(),
            Error::DecryptionFailed,
            "byte {i}"
        );
    }
    // A version that is not the key's.
    let mut t = bytes.clone();
    t[38..74].copy_from_slice(primary(&kms, &b).as_bytes());
    assert_eq!(
        kms.re_encrypt(&t, &b, &ctx(r#"{"ab":"c"}"#), &none())
            .unwrap_err()
            .code(),
        "Forbidden.KeyVersionNotFound"
    );
    // A blob from another store names a key this one does not have.
    let gone = Kms::in_memory().expect("other store");
    let foreign = gone
        .encrypt(&new_key(&gone), b"x", &none())
        .expect("encrypt")
        .ciphertext_blob;
    assert_eq!(
        kms.re_encrypt(&foreign, &b, &none(), &none())
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
}

fn data_key_without_plaintext(kms: Kms, _clock: ManualClock) {
    let key = new_key(&kms);
    kms.create_alias("alias/dk", &key).expect("alias");
    let c = ctx(r#"{"purpose":"dk"}"#);
    for (req, len) in [
        (GenerateDataKeyRequest::default(), 32),
        (GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128), 16),
        (GenerateDataKeyRequest::with_number_of_bytes(1), 1),
        (GenerateDataKeyRequest::with_number_of_bytes(1024), 1024),
        (
            GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128).context(c.clone()),
            16,
        ),
    ] {
        let sealed = kms
            .generate_data_key_without_plaintext("alias/dk", &req)
            .expect("generate");
        assert_eq!(sealed.key_id, key);
        assert_eq!(sealed.key_version_id, primary(&kms, &key));
        assert_eq!(kind_byte(&sealed.ciphertext_blob), 0x02);
        let d = kms
            .decrypt(&sealed.ciphertext_blob, &req.encryption_context)
            .expect("decrypt");
        assert_eq!(d.kind, PlaintextKind::DataKey);
        assert_eq!(d.plaintext.len(), len);
        assert_eq!(d.key_version_id, sealed.key_version_id);
    }
    // Fresh keys every time.
    let one = kms
        .generate_data_key_without_plaintext(&key, &Default::default())
        .expect("one");
    let two = kms
        .generate_data_key_without_plaintext(&key, &Default::default())
        .expect("two");
    let (d1, d2) = (
        kms.decrypt(&one.ciphertext_blob, &none()).expect("d1"),
        kms.decrypt(&two.ciphertext_blob, &none()).expect("d2"),
    );
    assert_ne!(d1.plaintext.expose_secret(), d2.plaintext.expose_secret());
    // The newest version seals after a rotation.
    let v2 = kms.create_key_version(&key).expect("rotate").key_version_id;
    let three = kms
        .generate_data_key_without_plaintext(&key, &Default::default())
        .expect("three");
    assert_eq!(three.key_version_id, v2);
}

fn data_key_without_plaintext_rules(kms: Kms, _clock: ManualClock) {
    let key = new_key(&kms);
    assert_eq!(
        kms.generate_data_key_without_plaintext("", &Default::default())
            .unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    for n in [0, 1025] {
        let e = kms
            .generate_data_key_without_plaintext(
                &key,
                &GenerateDataKeyRequest::with_number_of_bytes(n),
            )
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("NumberOfBytes"), "{e}");
    }
    assert_eq!(
        kms.generate_data_key_without_plaintext("alias/none", &Default::default())
            .unwrap_err()
            .code(),
        "Forbidden.AliasNotFound"
    );
    kms.disable_key(&key).expect("disable");
    assert_eq!(
        kms.generate_data_key_without_plaintext(&key, &Default::default())
            .unwrap_err()
            .code(),
        "Rejected.Disabled"
    );
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    assert_eq!(
        kms.generate_data_key_without_plaintext(&key, &Default::default())
            .unwrap_err()
            .code(),
        "Rejected.PendingDeletion"
    );
    let ext = support::external(&kms);
    assert_eq!(
        kms.generate_data_key_without_plaintext(&ext, &Default::default())
            .unwrap_err()
            .code(),
        "Rejected.PendingImport"
    );
}
