//! Writes `tests/data/first-format/`: a store in the first store format,
//! made by the code of commit 7d1b40f. Run once, by hand:
//! `cargo test --test make_first_format_fixture -- --ignored`.

mod support;

use localkms::{CreateKeyRequest, EncryptionContext, Kms, ManualClock, Tag, WrappingAlgorithm};

const ROOT: [u8; 32] = [0x5a; 32];
const T0: i64 = 1_767_225_600;

#[test]
#[ignore]
fn make_first_format_fixture() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/first-format");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("mkdir");
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .sled(out.join("store"))
        .root_key_bytes(&ROOT)
        .clock(clock.clone())
        .build()
        .expect("open");
    let ctx = EncryptionContext::from_json(r#"{"purpose":"fixture"}"#).expect("ctx");
    let mut blobs = Vec::new();
    let mut enc = |kms: &Kms, key: &str, text: &str| {
        let blob = kms
            .encrypt(key, text.as_bytes(), &ctx)
            .expect("encrypt")
            .ciphertext_blob;
        blobs.push(format!("{key} {text} {blob}"));
    };
    // a: Enabled, rotated once, an alias and a tag, blobs under both versions.
    let a = kms
        .create_key(&CreateKeyRequest {
            tags: vec![Tag::new("env", "test").expect("tag")],
            ..CreateKeyRequest::with_description("fixture a")
        })
        .expect("a")
        .key_id;
    enc(&kms, &a, "a-v1");
    clock.advance(60);
    kms.create_key_version(&a).expect("rotate");
    enc(&kms, &a, "a-v2");
    kms.create_alias("alias/fixture-a", &a).expect("alias");
    // b: Disabled after one blob.
    let b = kms.create_key(&Default::default()).expect("b").key_id;
    enc(&kms, &b, "b-v1");
    kms.disable_key(&b).expect("disable");
    // c: EXTERNAL with imported material.
    let c = support::external(&kms);
    support::import(
        &kms,
        &c,
        WrappingAlgorithm::RsaesOaepSha256,
        &[0xc3; 32],
        None,
    )
    .expect("import c");
    enc(&kms, &c, "c-v1");
    // d: EXTERNAL, material imported then deleted.
    let d = support::external(&kms);
    support::import(
        &kms,
        &d,
        WrappingAlgorithm::RsaesOaepSha256,
        &[0xd4; 32],
        None,
    )
    .expect("import d");
    enc(&kms, &d, "d-v1");
    kms.delete_key_material(&d).expect("delete material");
    // e: PendingDeletion in 7 days.
    let e = kms.create_key(&Default::default()).expect("e").key_id;
    enc(&kms, &e, "e-v1");
    kms.schedule_key_deletion(&e, 7).expect("schedule");
    kms.flush().expect("flush");
    drop(kms);
    let text = format!(
        "root_key: {}\nclock: {T0}\ncontext: {{\"purpose\":\"fixture\"}}\nkeys: a={a} b={b} c={c} d={d} e={e}\n{}\n",
        "5a".repeat(32),
        blobs.join("\n")
    );
    std::fs::write(out.join("fixture.txt"), text).expect("write");
}
