//! A first tour of localkms: a durable store on disk, a key walked through its
//! lifecycle, envelope encryption of a file, deletion windows, rotation and
//! ReEncrypt driven by a manual clock, and a secret's life.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::fs::File;
use std::io::{BufReader, BufWriter};

use localkms::{
    CreateKeyRequest, CreateSecretRequest, EncryptionContext, GenerateDataKeyRequest,
    GetSecretValueRequest, Kms, ManualClock, Paging, PutSecretValueRequest, SecretDeletion,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A store in a fresh directory. Kms::open keeps the root key in
    // DIR/root.key; production should pass the root key from outside instead
    // (Kms::builder().sled(dir).root_key_env("LOCALKMS_ROOT_KEY")).
    let dir = std::env::temp_dir().join(format!("localkms-quickstart-{}", std::process::id()));
    let kms = Kms::open(&dir)?;
    println!("opened a store in {}", dir.display());

    let key = kms.create_key(&CreateKeyRequest::with_description("quickstart key"))?;
    println!(
        "created key {} ({}), primary version {}",
        key.key_id, key.key_state, key.primary_key_version
    );
    println!("  arn: {}", key.arn);

    kms.disable_key(&key.key_id)?;
    println!(
        "disabled: state is {}",
        kms.describe_key(&key.key_id)?.key_state
    );
    kms.enable_key(&key.key_id)?;
    println!(
        "enabled: state is {}",
        kms.describe_key(&key.key_id)?.key_state
    );

    kms.schedule_key_deletion(&key.key_id, 7)?;
    let pending = kms.describe_key(&key.key_id)?;
    println!(
        "scheduled deletion: state is {}, DeleteDate {}",
        pending.key_state, pending.delete_date
    );
    kms.cancel_key_deletion(&key.key_id)?;
    println!(
        "cancelled deletion: state is {}",
        kms.describe_key(&key.key_id)?.key_state
    );

    let page = kms.list_keys(Paging::default())?;
    println!("ListKeys: {} key(s) in the store", page.total_count);

    // Errors carry the API's codes.
    let err = kms.enable_key("alias/not-here").unwrap_err();
    println!("EnableKey with an alias: {} ({})", err.code(), err);

    // Envelope encryption through an alias. The context is authenticated,
    // never stored: decryption must repeat it.
    kms.create_alias("alias/quickstart", &key.key_id)?;
    let ctx = EncryptionContext::from_pairs([("tenant", "acme")])?;
    let blob = kms.encrypt("alias/quickstart", b"card 4111-1111", &ctx)?;
    println!(
        "Encrypt: {} bytes of blob under version {}",
        blob.ciphertext_blob.len(),
        blob.key_version_id
    );
    let back = kms.decrypt(&blob.ciphertext_blob, &ctx)?;
    assert_eq!(back.plaintext.expose_secret(), b"card 4111-1111");
    let wrong = kms
        .decrypt(&blob.ciphertext_blob, &EncryptionContext::default())
        .unwrap_err();
    println!("Decrypt with another context: {} ({})", wrong.code(), wrong);
    let data_key = kms.generate_data_key("alias/quickstart", &GenerateDataKeyRequest::default())?;
    println!(
        "GenerateDataKey: a {}-byte data key",
        data_key.plaintext.expose_secret().len()
    );

    // Any size streams through an envelope, one 64 KiB chunk at a time, under
    // a fresh data key.
    let (plain, sealed, out) = (
        dir.join("report.csv"),
        dir.join("report.csv.lkev"),
        dir.join("report.out"),
    );
    std::fs::write(&plain, "id,amount\n1,42\n".repeat(100_000))?;
    let info = kms.envelope_encrypt_stream(
        "alias/quickstart",
        &ctx,
        BufReader::new(File::open(&plain)?),
        BufWriter::new(File::create(&sealed)?),
    )?;
    println!(
        "envelope: sealed {} bytes of {}",
        info.plaintext_bytes,
        plain.display()
    );
    // Decrypt to a temporary name; keep it only if the whole envelope checks out.
    let partial = dir.join("report.out.partial");
    kms.envelope_decrypt_stream(
        &ctx,
        BufReader::new(File::open(&sealed)?),
        BufWriter::new(File::create(&partial)?),
    )?;
    std::fs::rename(&partial, &out)?;
    assert_eq!(std::fs::read(&plain)?, std::fs::read(&out)?);
    println!("envelope: decrypted it back, byte for byte");

    // Reopening finds everything again.
    drop(kms);
    let kms = Kms::open(&dir)?;
    println!(
        "reopened: key is {}",
        kms.describe_key(&key.key_id)?.key_state
    );
    let again = kms.decrypt(&blob.ciphertext_blob, &ctx)?;
    assert_eq!(again.plaintext.expose_secret(), b"card 4111-1111");
    println!("reopened: the blob still decrypts");
    drop(kms);
    std::fs::remove_dir_all(&dir)?;

    // Time under control: a deletion window passes in an instant.
    let clock = ManualClock::new(1_767_225_600);
    let kms = Kms::builder().in_memory().clock(clock.clone()).build()?;
    let doomed = kms.create_key(&CreateKeyRequest::default())?.key_id;
    kms.schedule_key_deletion(&doomed, 7)?;
    clock.advance(7 * 86_400);
    let gone = kms.describe_key(&doomed).unwrap_err();
    assert_eq!(gone.code(), "Forbidden.KeyNotFound");
    println!(
        "after 7 days on a manual clock the key is gone: {}",
        gone.code()
    );
    assert_eq!(kms.list_keys(Paging::default())?.total_count, 0);

    // Rotation and ReEncrypt on the same manual clock.
    let key = kms
        .create_key(&CreateKeyRequest {
            enable_automatic_rotation: true,
            rotation_interval: Some(localkms::parse_rotation_interval("30d")?),
            ..CreateKeyRequest::default()
        })?
        .key_id;
    let ctx = EncryptionContext::from_json(r#"{"app":"quickstart"}"#)?;
    let old = kms.encrypt(&key, b"written before rotation", &ctx)?;
    clock.advance(30 * 86_400); // NextRotationDate passes: the next use rotates
    let meta = kms.describe_key(&key)?;
    println!(
        "rotated: primary {} (was {}), next rotation {}",
        meta.primary_key_version, old.key_version_id, meta.next_rotation_date
    );
    let still = kms.decrypt(&old.ciphertext_blob, &ctx)?;
    assert_eq!(still.key_version_id, old.key_version_id);
    println!(
        "a blob from before the rotation still decrypts under {}",
        still.key_version_id
    );
    let other = kms.create_key(&CreateKeyRequest::default())?.key_id;
    let moved = kms.re_encrypt(
        &old.ciphertext_blob,
        &other,
        &ctx,
        &EncryptionContext::default(),
    )?;
    let opened = kms.decrypt(&moved.ciphertext_blob, &EncryptionContext::default())?;
    assert_eq!(opened.plaintext.expose_secret(), b"written before rotation");
    println!(
        "ReEncrypt moved it to key {} without the plaintext leaving the library",
        moved.key_id
    );

    // A secret's life: values sealed under a CMK (here the default service
    // key), versions and stages, and a deletion window on the same clock.
    kms.create_secret(&CreateSecretRequest::new("db/password"), b"hunter2")?;
    kms.put_secret_value(
        "db/password",
        b"correct horse",
        &PutSecretValueRequest::version("v2"),
    )?;
    let current = kms.get_secret_value("db/password", &GetSecretValueRequest::default())?;
    let previous =
        kms.get_secret_value("db/password", &GetSecretValueRequest::stage("ACSPrevious"))?;
    assert_eq!(current.secret_data.expose_secret(), b"correct horse");
    assert_eq!(previous.secret_data.expose_secret(), b"hunter2");
    println!(
        "secret: current is version {}, the first value is now {:?}",
        current.version_id, previous.version_stages
    );
    let deleted = kms.delete_secret("db/password", SecretDeletion::RecoveryWindow(7))?;
    println!(
        "secret: deletion planned for {}",
        deleted.planned_delete_time
    );
    kms.restore_secret("db/password")?;
    kms.delete_secret("db/password", SecretDeletion::RecoveryWindow(7))?;
    clock.advance(7 * 86_400);
    let gone = kms.describe_secret("db/password", false).unwrap_err();
    println!(
        "secret: restored once, deleted again, gone after 7 days: {}",
        gone.code()
    );
    Ok(())
}
