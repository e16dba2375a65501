//! Cross-checks of the SERVICE (not the primitives: `asym_crosscheck.rs`
//! does those) with tools this project did not write, using the public key
//! GetPublicKey returns:
//! - AsymmetricSign output verified by `openssl pkeyutl` (over the digest)
//!   and Python `cryptography` (over the message, so nothing hashed twice),
//!   for ECDSA P-256 and secp256k1, RSA PKCS#1 v1.5 and PSS, and SM2DSA
//!   (OpenSSL's SM2 with distid `1234567812345678`, and `gmssl`);
//! - ciphertexts made by Python `cryptography` (RSA-OAEP SHA-256 and SHA-1),
//!   OpenSSL (SM2) and `gmssl` (SM2, raw C1C3C2 converted to ASN.1) opened
//!   by AsymmetricDecrypt;
//! - GenerateMac of a fixture key with known bytes against Python `hmac`
//!   (HMAC-SHA-256) and `openssl mac` (HMAC-SM3).
//!
//! Signing with the tools and verifying with AsymmetricVerify needs the
//! service's private key, which never leaves it: that direction is covered
//! below the API by `asym_crosscheck.rs`. Tool discovery as there: a loud
//! SKIPPED line without them, a failure under `CI=true`.

#[path = "support/crosscheck.rs"]
mod crosscheck;
use crosscheck::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use localkms::asym::{PublicKey, sha256, sm2_digest};
use localkms::{Algorithm, CreateKeyRequest, KeySpec, KeyUsage, Kms};
use serde_json::json;

fn tools() -> Option<(PathBuf, bool)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let python = std::env::var_os("LOCALKMS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let has_py = Command::new(&python)
        .args(["-c", "import cryptography, gmssl"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let has_openssl = Path::new(OPENSSL).exists();
    if has_py && (has_openssl || !ci) {
        return Some((python, has_openssl));
    }
    let msg = format!(
        "service cross-checks need Python with cryptography and gmssl (LOCALKMS_PYTHON) and {OPENSSL}"
    );
    assert!(!ci, "{msg}");
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    None
}

fn key(kms: &Kms, spec: KeySpec, usage: Option<KeyUsage>) -> (String, String, String) {
    let m = kms
        .create_key(&CreateKeyRequest {
            key_spec: spec,
            key_usage: usage,
            ..Default::default()
        })
        .unwrap();
    let pem = kms
        .get_public_key(&m.key_id, &m.primary_key_version)
        .unwrap()
        .public_key;
    (m.key_id, m.primary_key_version, pem)
}

#[test]
fn service_crosscheck() {
    let Some((python, with_openssl)) = tools() else {
        return;
    };
    let kms = Kms::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut checks: Vec<String> = Vec::new();

    // 1. AsymmetricSign, verified by OpenSSL and cryptography.
    for (spec, alg, curve) in [
        (KeySpec::EcP256, Algorithm::EcdsaSha256, "ec"),
        (KeySpec::EcP256K, Algorithm::EcdsaSha256, "ec"),
        (KeySpec::Rsa2048, Algorithm::RsaPkcs1Sha256, "pkcs1"),
        (KeySpec::Rsa3072, Algorithm::RsaPssSha256, "pss"),
    ] {
        let (id, v, pem) = key(&kms, spec, None);
        let msg = format!("service message {spec} {alg}").into_bytes();
        let digest = sha256(&msg);
        let sig = kms.asymmetric_sign(&id, &v, alg, &digest).unwrap().value;
        if with_openssl {
            let pub_path = write(d, "pub.pem", pem.as_bytes());
            let dig_path = write(d, "digest.bin", &digest);
            let sig_path = write(d, "sig.bin", &sig);
            let mut args = vec![
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                &pub_path,
                "-in",
                &dig_path,
                "-sigfile",
                &sig_path,
                "-pkeyopt",
                "digest:sha256",
            ];
            if alg == Algorithm::RsaPssSha256 {
                args.extend([
                    "-pkeyopt",
                    "rsa_padding_mode:pss",
                    "-pkeyopt",
                    "rsa_pss_saltlen:32",
                    "-pkeyopt",
                    "rsa_mgf1_md:sha256",
                ]);
            }
            assert!(
                openssl(&args).0,
                "openssl rejects the service's {spec} {alg}"
            );
            let mut bad = sig.clone();
            bad[sig.len() / 2] ^= 1;
            write(d, "sig.bin", &bad);
            assert!(!openssl(&args).0, "openssl accepts a flipped {spec} {alg}");
            checks.push(format!("openssl verifies AsymmetricSign {spec} {alg}"));
        }
        let r = py(
            &python,
            r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
k = serialization.load_pem_public_key(inp["pem"].encode())
def check(sig, msg):
    try:
        if inp["kind"] == "ec":
            k.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        elif inp["kind"] == "pkcs1":
            k.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
        else:
            k.verify(sig, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        return True
    except Exception:
        return False
print(json.dumps([check(H(inp["sig"]), H(inp["msg"])), check(H(inp["sig"]), b"other")]))
"#,
            &json!({"pem": pem, "kind": curve, "sig": hexs(&sig), "msg": hexs(&msg)}),
        );
        assert_eq!(r, json!([true, false]), "cryptography on {spec} {alg}");
        checks.push(format!("cryptography verifies AsymmetricSign {spec} {alg}"));
    }

    // 2. SM2DSA from the service, verified by gmssl and OpenSSL.
    let (id, v, pem) = key(&kms, KeySpec::EcSm2, None);
    let public = PublicKey::from_pem(localkms::asym::KeySpec::EcSm2, &pem).unwrap();
    let msg = b"SM2 message through the service";
    let e = sm2_digest(&public, msg).unwrap();
    let sig = kms
        .asymmetric_sign(&id, &v, Algorithm::Sm2Dsa, &e)
        .unwrap()
        .value;
    let xy = &public.to_der().unwrap();
    let xy = hexs(&xy[xy.len() - 64..]);
    let r = py(
        &python,
        r#"
from gmssl import sm2, func
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
r, s = decode_dss_signature(H(inp["sig"]))
raw = "%064x%064x" % (r, s)
c = sm2.CryptSM2(private_key=None, public_key=inp["xy"], mode=1)
print(json.dumps([c.verify_with_sm3(raw, H(inp["msg"])), c.verify_with_sm3(raw, b"other")]))
"#,
        &json!({"sig": hexs(&sig), "xy": xy, "msg": hexs(msg)}),
    );
    assert_eq!(r, json!([true, false]), "gmssl on the service's SM2DSA");
    checks.push("gmssl verifies AsymmetricSign SM2DSA".into());
    if with_openssl {
        let pub_path = write(d, "sm2.pem", pem.as_bytes());
        let msg_path = write(d, "sm2_msg.bin", msg);
        let sig_path = write(d, "sm2_sig.bin", &sig);
        let args = [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &pub_path,
            "-rawin",
            "-in",
            &msg_path,
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-sigfile",
            &sig_path,
        ];
        assert!(openssl(&args).0, "openssl rejects the service's SM2DSA");
        checks.push("openssl verifies AsymmetricSign SM2DSA".into());
    }

    // 3. The tools encrypt to the service's keys; AsymmetricDecrypt opens.
    let (id, v, pem) = key(&kms, KeySpec::Rsa2048, Some(KeyUsage::EncryptDecrypt));
    for (alg, hash) in [
        (Algorithm::RsaesOaepSha256, "SHA256"),
        (Algorithm::RsaesOaepSha1, "SHA1"),
    ] {
        let r = py(
            &python,
            r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
k = serialization.load_pem_public_key(inp["pem"].encode())
h = getattr(hashes, inp["hash"])()
print(json.dumps(k.encrypt(b"from cryptography", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)).hex()))
"#,
            &json!({"pem": pem, "hash": hash}),
        );
        let ct = unhex(r.as_str().unwrap());
        let pt = kms.asymmetric_decrypt(&id, &v, alg, &ct).unwrap();
        assert_eq!(pt.plaintext.expose_secret(), b"from cryptography");
        checks.push(format!("AsymmetricDecrypt opens cryptography's {alg}"));
    }
    let (id, v, pem) = key(&kms, KeySpec::EcSm2, Some(KeyUsage::EncryptDecrypt));
    let public = PublicKey::from_pem(localkms::asym::KeySpec::EcSm2, &pem).unwrap();
    let der = public.to_der().unwrap();
    let xy = hexs(&der[der.len() - 64..]);
    let r = py(
        &python,
        r#"
from gmssl import sm2
c = sm2.CryptSM2(private_key=None, public_key=inp["xy"], mode=1)
print(json.dumps(c.encrypt(b"from gmssl").hex()))
"#,
        &json!({"xy": xy}),
    );
    let raw = unhex(r.as_str().unwrap());
    let pt = kms
        .asymmetric_decrypt(&id, &v, Algorithm::Sm2Pke, &sm2_raw_to_asn1(&raw))
        .unwrap();
    assert_eq!(pt.plaintext.expose_secret(), b"from gmssl");
    checks.push("AsymmetricDecrypt opens gmssl's SM2PKE".into());
    if with_openssl {
        let pub_path = write(d, "sm2e.pem", pem.as_bytes());
        let pt_path = write(d, "sm2_pt.bin", b"from openssl");
        let (ok, ct) = openssl(&[
            "pkeyutl", "-encrypt", "-pubin", "-inkey", &pub_path, "-in", &pt_path,
        ]);
        assert!(ok);
        let pt = kms
            .asymmetric_decrypt(&id, &v, Algorithm::Sm2Pke, &ct)
            .unwrap();
        assert_eq!(pt.plaintext.expose_secret(), b"from openssl");
        checks.push("AsymmetricDecrypt opens openssl's SM2PKE".into());
    }

    // 4. GenerateMac with known key bytes (a test-util fixture when
    //    available; else only the tags' self-consistency is checked).
    if cfg!(feature = "test-util") {
        let hex_key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
        let ids = kms
            .load_fixtures(&format!(
                r#"{{"Keys": [{{"KeySpec": "HMAC_SHA_256", "Versions": [{{"MaterialHex": "{hex_key}"}}]}},
                              {{"KeySpec": "HMAC_SM3", "Versions": [{{"MaterialHex": "{hex_key}"}}]}}]}}"#
            ))
            .unwrap();
        let msg = b"message for the MAC";
        let ours = kms
            .generate_mac(&ids[0], Algorithm::HmacSha256, msg)
            .unwrap()
            .mac;
        let r = py(
            &python,
            "import hmac, hashlib\nprint(json.dumps(hmac.new(H(inp['k']), H(inp['m']), hashlib.sha256).hexdigest()))",
            &json!({"k": hex_key, "m": hexs(msg)}),
        );
        assert_eq!(r.as_str().unwrap(), hexs(&ours));
        checks.push("GenerateMac HMAC_SHA_256 equals Python hmac".into());
        if with_openssl {
            let ours = kms
                .generate_mac(&ids[1], Algorithm::HmacSm3, msg)
                .unwrap()
                .mac;
            let msg_path = write(d, "mac_msg.bin", msg);
            let (ok, out) = openssl(&[
                "mac",
                "-digest",
                "SM3",
                "-macopt",
                &format!("hexkey:{hex_key}"),
                "-in",
                &msg_path,
                "HMAC",
            ]);
            assert!(ok);
            assert_eq!(
                String::from_utf8_lossy(&out).trim().to_lowercase(),
                hexs(&ours)
            );
            checks.push("GenerateMac HMAC_SM3 equals openssl mac".into());
        }
    }
    eprintln!("service cross-checks passed:\n  {}", checks.join("\n  "));
}
