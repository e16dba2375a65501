//! The store format v2 (docs/FORMAT.md): the sealed record, the store id
//! record, the digest term, the head and the witness slot, against golden
//! vectors computed independently (tests/data/store-v2-vectors.txt).

use localkms::store::golden;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn field(name: &str) -> Vec<u8> {
    let text = include_str!("data/store-v2-vectors.txt");
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("field {name}"));
    if matches!(name, "ns" | "id") {
        v.as_bytes().to_vec()
    } else {
        hex(v)
    }
}

fn arr<const N: usize>(v: Vec<u8>) -> [u8; N] {
    v.try_into().expect("length")
}

#[test]
fn derived_keys_match() {
    let keys = golden::derived_keys(&field("root_key")).expect("root");
    assert_eq!(keys[0].to_vec(), field("record_key"));
    assert_eq!(keys[1].to_vec(), field("digest_key"));
    assert_eq!(keys[2].to_vec(), field("witness_key"));
}

#[test]
fn sealed_record_v2_matches_and_every_change_fails() {
    let root = field("root_key");
    let sid: [u8; 16] = arr(field("store_id"));
    let ns = String::from_utf8(field("ns")).expect("ns");
    let id = field("id");
    let sealed = field("sealed");
    let got = golden::seal_record(
        &root,
        &sid,
        &ns,
        &id,
        &field("plaintext"),
        arr(field("nonce")),
    )
    .expect("seal");
    assert_eq!(got, sealed);
    assert_eq!(
        golden::open_record(&root, &sid, &ns, &id, &sealed).expect("root"),
        Some(field("plaintext"))
    );
    for i in 0..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert_eq!(
            golden::open_record(&root, &sid, &ns, &id, &t).expect("root"),
            None,
            "byte {i}"
        );
    }
    let mut other = sid;
    other[0] ^= 1;
    for (s, n, i) in [
        (&other, ns.as_str(), id.as_slice()),
        (&sid, "tag", &id),
        (&sid, &ns, b"x"),
    ] {
        assert_eq!(
            golden::open_record(&root, s, n, i, &sealed).expect("root"),
            None
        );
    }
}

#[test]
fn store_id_record_and_head_match() {
    let root = field("root_key");
    let sid: [u8; 16] = arr(field("store_id"));
    let id_record = golden::seal_record(
        &root,
        &[0; 16],
        "head",
        b"store-id",
        &sid,
        arr(field("store_id_nonce")),
    )
    .expect("seal");
    assert_eq!(id_record, field("store_id_record"));
    let term =
        golden::digest_term(&root, &sid, "key", &field("id"), &field("sealed")).expect("term");
    assert_eq!(term.to_vec(), field("digest_term"));
    let head = golden::head(7, 1, term);
    assert_eq!(head, field("head_plaintext"));
    let until = i64::from_be_bytes(arr(field("leased_head_until_ms")));
    let leased = golden::leased_head(7, 1, term, arr(field("leased_head_owner")), until);
    assert_eq!(leased, field("leased_head_plaintext"));
    let sealed_head = golden::seal_record(
        &root,
        &sid,
        "head",
        b"head",
        &head,
        arr(field("head_nonce")),
    )
    .expect("seal");
    assert_eq!(sealed_head, field("head_record"));
}

#[test]
fn witness_slot_matches() {
    let slot = golden::witness_slot(&field("root_key"), &arr(field("store_id")), 7).expect("root");
    assert_eq!(slot.to_vec(), field("witness_slot"));
}
