//! Cross-checks of the asymmetric, HMAC and SM2 primitives with tools this
//! project did not write: OpenSSL (`openssl pkeyutl`, `openssl mac`), Python
//! `cryptography` and `hmac`, and `gmssl` (a pure-Python SM2) from PyPI.
//!
//! The Python comes from `LOCALKMS_PYTHON` (set by `scripts/test.sh`, a venv
//! with `scripts/requirements.txt`), else `python3` if it has the modules.
//! Without the tools the test prints a loud SKIPPED line, except under
//! `CI=true`, where it fails.
//!
//! Encodings, as each tool needs them:
//! - ECDSA and SM2 signatures are DER `SEQUENCE { r, s }` everywhere except
//!   gmssl, which takes and gives raw `r || s` (64 bytes, hex); the Python
//!   side converts with `cryptography`'s `encode/decode_dss_signature`.
//! - SM2PKE: ours and OpenSSL 3 use the GM/T 0009 ASN.1 form
//!   `SEQUENCE { x, y, C3, C2 }` (C1C3C2 order). gmssl (`mode=1`) uses raw
//!   `x || y || C3 || C2` without the 0x04 point prefix; this file converts.
//!   gmssl's decrypt does not check C3, so OpenSSL's decrypt is the strict
//!   check of our C3.
//! - SM2DSA digests: OpenSSL (`-rawin -digest sm3 -pkeyopt
//!   distid:1234567812345678`) and gmssl (`sign_with_sm3`, fixed default id)
//!   hash Z(A) || M themselves; we pass `sm2_digest(public key, M)`.
//! - gmssl public keys are hex `x || y`; SPKI DER is built from it here.

#[path = "support/crosscheck.rs"]
mod crosscheck;
use crosscheck::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use getrandom::SysRng;
use localkms::asym::{Algorithm, KeySpec, PrivateKey, PublicKey, mac, sha256, sm2_digest};
use serde_json::json;

/// The tools, or `None` after a loud SKIPPED line (a failure under CI=true).
fn tools() -> Option<(PathBuf, Option<PathBuf>)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let has = |py: &Path, modules: &str| {
        Command::new(py)
            .args(["-c", &format!("import {modules}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let python = std::env::var_os("LOCALKMS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("python3")))
        .filter(|p| has(p, "cryptography, gmssl"));
    let openssl = Path::new(OPENSSL).exists().then(|| PathBuf::from(OPENSSL));
    match (python, openssl) {
        (Some(py), openssl) if openssl.is_some() || !ci => {
            if openssl.is_none() {
                eprintln!("!!!!! SKIPPED: OpenSSL cross-checks: {OPENSSL} not found !!!!!");
            }
            Some((py, openssl))
        }
        (py, openssl) => {
            let msg = format!(
                "asym cross-checks need Python with cryptography and gmssl (set LOCALKMS_PYTHON, \
                 see scripts/test.sh) and {OPENSSL}: python {}, openssl {}",
                py.is_some(),
                openssl.is_some()
            );
            assert!(!ci, "{msg}");
            eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
            None
        }
    }
}

const ECDSA_CURVES: [(KeySpec, &str); 2] = [
    (KeySpec::EcP256, "ec.SECP256R1()"),
    (KeySpec::EcP256K, "ec.SECP256K1()"),
];

#[test]
fn crosscheck() {
    let Some((python, openssl_path)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut checks = Vec::new();

    // 1. Sign with ours; verify with OpenSSL (over the digest) and Python
    //    cryptography (over the message: proves we did not hash twice).
    let rsa = PrivateKey::generate(KeySpec::Rsa2048, &mut SysRng).unwrap();
    let mut signers: Vec<(PrivateKey, Algorithm)> = ECDSA_CURVES
        .iter()
        .map(|(s, _)| {
            (
                PrivateKey::generate(*s, &mut SysRng).unwrap(),
                Algorithm::EcdsaSha256,
            )
        })
        .collect();
    let rsa_pss =
        PrivateKey::from_pkcs8_der(KeySpec::Rsa2048, &rsa.to_pkcs8_der().unwrap()).unwrap();
    signers.push((rsa, Algorithm::RsaPkcs1Sha256));
    signers.push((rsa_pss, Algorithm::RsaPssSha256));
    for (key, alg) in &signers {
        let msg = format!("message for {} {alg}", key.spec()).into_bytes();
        let digest = sha256(&msg);
        let sig = key.sign_digest(*alg, &digest, &mut SysRng).unwrap();
        let pem = key.public_key_pem().unwrap();
        if openssl_path.is_some() {
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
            if *alg == Algorithm::RsaPssSha256 {
                args.extend([
                    "-pkeyopt",
                    "rsa_padding_mode:pss",
                    "-pkeyopt",
                    "rsa_pss_saltlen:32",
                    "-pkeyopt",
                    "rsa_mgf1_md:sha256",
                ]);
            }
            assert!(openssl(&args).0, "openssl rejects our {} {alg}", key.spec());
            // And refuses a flipped bit.
            let mut bad = sig.clone();
            bad[sig.len() / 2] ^= 1;
            write(d, "sig.bin", &bad);
            assert!(!openssl(&args).0, "openssl accepts a flipped {alg}");
            checks.push(format!("openssl verifies our {} {alg}", key.spec()));
        }
        let r = py(
            &python,
            r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
k = serialization.load_pem_public_key(inp["pem"].encode())
alg = inp["alg"]
def check(sig):
    try:
        if alg == "ECDSA_SHA_256":
            k.verify(sig, H(inp["msg"]), ec.ECDSA(hashes.SHA256()))
        elif alg == "RSA_PKCS1_SHA_256":
            k.verify(sig, H(inp["msg"]), padding.PKCS1v15(), hashes.SHA256())
        else:
            k.verify(sig, H(inp["msg"]), padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        return True
    except Exception:
        return False
sig = H(inp["sig"])
bad = bytearray(sig); bad[-1] ^= 1
print(json.dumps({"ok": check(sig), "bad": check(bytes(bad))}))
"#,
            &json!({"pem": pem, "alg": alg.as_str(), "msg": hexs(&msg), "sig": hexs(&sig)}),
        );
        assert_eq!(
            r,
            json!({"ok": true, "bad": false}),
            "cryptography on our {} {alg}",
            key.spec()
        );
        checks.push(format!("cryptography verifies our {} {alg}", key.spec()));
    }

    // 2. Sign with Python cryptography (its ECDSA emits high-S about half the
    //    time) and with OpenSSL; verify with ours.
    for (spec, curve) in ECDSA_CURVES {
        let r = py(
            &python,
            &format!(
                r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
k = ec.generate_private_key({curve})
n = {{"EC_P256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
     "EC_P256K": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141}}[inp["spec"]]
sigs = []
high = 0
for i in range(24):
    m = b"py message %d" % i
    s = k.sign(m, ec.ECDSA(hashes.SHA256()))
    high += decode_dss_signature(s)[1] > n // 2
    sigs.append([m.hex(), s.hex()])
pem = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
print(json.dumps({{"pem": pem, "sigs": sigs, "high": high}}))
"#
            ),
            &json!({"spec": spec.as_str()}),
        );
        let pk = PublicKey::from_pem(spec, r["pem"].as_str().unwrap()).unwrap();
        for s in r["sigs"].as_array().unwrap() {
            let (m, sig) = (unhex(s[0].as_str().unwrap()), unhex(s[1].as_str().unwrap()));
            assert!(
                pk.verify_digest(Algorithm::EcdsaSha256, &sha256(&m), &sig)
                    .unwrap(),
                "{spec}"
            );
            assert!(
                !pk.verify_digest(Algorithm::EcdsaSha256, &sha256(b"other"), &sig)
                    .unwrap()
            );
        }
        assert!(
            r["high"].as_u64().unwrap() > 0,
            "no high-S signature among 24"
        );
        checks.push(format!(
            "we verify cryptography's {spec} ECDSA ({} high-S of 24)",
            r["high"]
        ));
    }
    let r = py(
        &python,
        r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
k = rsa.generate_private_key(public_exponent=65537, key_size=3072)
m = b"rsa message from python"
out = {"msg": m.hex(),
  "pkcs1": k.sign(m, padding.PKCS1v15(), hashes.SHA256()).hex(),
  "pss": k.sign(m, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()).hex(),
  "pem": k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
print(json.dumps(out))
"#,
        &json!({}),
    );
    let pk = PublicKey::from_pem(KeySpec::Rsa3072, r["pem"].as_str().unwrap()).unwrap();
    let digest = sha256(&unhex(r["msg"].as_str().unwrap()));
    for (field, alg) in [
        ("pkcs1", Algorithm::RsaPkcs1Sha256),
        ("pss", Algorithm::RsaPssSha256),
    ] {
        let sig = unhex(r[field].as_str().unwrap());
        assert!(pk.verify_digest(alg, &digest, &sig).unwrap(), "{alg}");
        let other = if alg == Algorithm::RsaPssSha256 {
            Algorithm::RsaPkcs1Sha256
        } else {
            Algorithm::RsaPssSha256
        };
        assert!(
            !pk.verify_digest(other, &digest, &sig).unwrap(),
            "{alg} as {other}"
        );
        checks.push(format!("we verify cryptography's RSA_3072 {alg}"));
    }
    if openssl_path.is_some() {
        for (spec, genargs) in [
            (
                KeySpec::EcP256,
                vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
            (
                KeySpec::EcP256K,
                vec![
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:secp256k1",
                ],
            ),
            (
                KeySpec::Rsa2048,
                vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
        ] {
            let key_path = d.join("tool.pem").to_str().unwrap().to_owned();
            let pub_path = d.join("tool_pub.pem").to_str().unwrap().to_owned();
            let mut args = vec!["genpkey"];
            args.extend(genargs.iter().copied());
            args.extend(["-out", &key_path]);
            assert!(openssl(&args).0);
            assert!(openssl(&["pkey", "-in", &key_path, "-pubout", "-out", &pub_path]).0);
            let pk =
                PublicKey::from_pem(spec, &std::fs::read_to_string(&pub_path).unwrap()).unwrap();
            let digest = sha256(b"openssl signs this");
            let dig_path = write(d, "digest.bin", &digest);
            let algs: &[Algorithm] = if spec == KeySpec::Rsa2048 {
                &[Algorithm::RsaPkcs1Sha256, Algorithm::RsaPssSha256]
            } else {
                &[Algorithm::EcdsaSha256]
            };
            for &alg in algs {
                let mut args = vec![
                    "pkeyutl",
                    "-sign",
                    "-inkey",
                    &key_path,
                    "-in",
                    &dig_path,
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
                let (ok, sig) = openssl(&args);
                assert!(ok);
                assert!(
                    pk.verify_digest(alg, &digest, &sig).unwrap(),
                    "openssl {spec} {alg}"
                );
                assert!(!pk.verify_digest(alg, &sha256(b"x"), &sig).unwrap());
                checks.push(format!("we verify openssl's {spec} {alg}"));
            }
        }
    }

    // 3. RSA-OAEP: Python and OpenSSL encrypt to our key, we decrypt; we
    //    encrypt to Python's key, Python decrypts.
    let rsa = &signers[2].0;
    let rsa_dec =
        PrivateKey::from_pkcs8_der(KeySpec::Rsa2048, &rsa.to_pkcs8_der().unwrap()).unwrap();
    let r = py(
        &python,
        r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
k = serialization.load_pem_public_key(inp["pem"].encode())
def oaep(h): return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)
m = H(inp["msg"])
mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
print(json.dumps({
  "sha1": k.encrypt(m, oaep(hashes.SHA1())).hex(),
  "sha256": k.encrypt(m, oaep(hashes.SHA256())).hex(),
  "pem": mine.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
  "der": mine.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).hex()}))
"#,
        &json!({"pem": rsa.public_key_pem().unwrap(), "msg": hexs(b"oaep secret")}),
    );
    for (field, alg) in [
        ("sha1", Algorithm::RsaesOaepSha1),
        ("sha256", Algorithm::RsaesOaepSha256),
    ] {
        let ct = unhex(r[field].as_str().unwrap());
        assert_eq!(
            &rsa_dec.decrypt(alg, &ct, &mut SysRng).unwrap()[..],
            b"oaep secret"
        );
        let other = if alg == Algorithm::RsaesOaepSha1 {
            Algorithm::RsaesOaepSha256
        } else {
            Algorithm::RsaesOaepSha1
        };
        assert!(rsa_dec.decrypt(other, &ct, &mut SysRng).is_err());
        checks.push(format!("we decrypt cryptography's {alg}"));
    }
    let theirs = PublicKey::from_pem(KeySpec::Rsa2048, r["pem"].as_str().unwrap()).unwrap();
    for (h, alg) in [
        ("SHA1", Algorithm::RsaesOaepSha1),
        ("SHA256", Algorithm::RsaesOaepSha256),
    ] {
        let ct = theirs.encrypt(alg, b"to python", &mut SysRng).unwrap();
        let out = py(
            &python,
            &format!(
                r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
k = serialization.load_der_private_key(H(inp["der"]), None)
h = hashes.{h}()
print(json.dumps(k.decrypt(H(inp["ct"]), padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)).hex()))
"#
            ),
            &json!({"der": r["der"], "ct": hexs(&ct)}),
        );
        assert_eq!(out, json!(hexs(b"to python")));
        checks.push(format!("cryptography decrypts our {alg}"));
    }
    if openssl_path.is_some() {
        let pub_path = write(d, "rsa_pub.pem", rsa.public_key_pem().unwrap().as_bytes());
        let pt_path = write(d, "pt.bin", b"openssl oaep");
        for (md, alg) in [
            ("sha1", Algorithm::RsaesOaepSha1),
            ("sha256", Algorithm::RsaesOaepSha256),
        ] {
            let (ok, ct) = openssl(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                &pub_path,
                "-in",
                &pt_path,
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &format!("rsa_oaep_md:{md}"),
                "-pkeyopt",
                &format!("rsa_mgf1_md:{md}"),
            ]);
            assert!(ok);
            assert_eq!(
                &rsa_dec.decrypt(alg, &ct, &mut SysRng).unwrap()[..],
                b"openssl oaep"
            );
            checks.push(format!("we decrypt openssl's {alg}"));
        }
    }

    // 4. HMAC against Python's hmac (SM3 through OpenSSL's provider).
    let key = b"0123456789abcdef0123456789abcdef";
    let msg = vec![0x5au8; 1000];
    for (spec, name) in [
        (KeySpec::HmacSha224, "sha224"),
        (KeySpec::HmacSha256, "sha256"),
        (KeySpec::HmacSha384, "sha384"),
        (KeySpec::HmacSha512, "sha512"),
        (KeySpec::HmacSm3, "sm3"),
    ] {
        let r = py(
            &python,
            "import hmac\nprint(json.dumps(hmac.new(H(inp['k']), H(inp['m']), inp['h']).hexdigest()))",
            &json!({"k": hexs(key), "m": hexs(&msg), "h": name}),
        );
        assert_eq!(r, json!(hexs(&mac(spec, key, &msg).unwrap())), "{spec}");
        checks.push(format!("python hmac agrees on {spec}"));
    }

    // 5. SM2 against gmssl and OpenSSL 3.
    sm2_checks(&python, openssl_path.is_some(), d, &mut checks);

    println!("\ncross-checks passed ({}):", checks.len());
    for c in &checks {
        println!("  {c}");
    }
    assert!(checks.len() >= 20, "{checks:#?}");
}

/// SPKI DER for an SM2 point given as gmssl's hex `x || y`.
fn sm2_spki(xy: &[u8]) -> Vec<u8> {
    let mut der = unhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004");
    der.extend_from_slice(xy);
    der
}

/// The raw `x || y` of an SM2 SPKI DER (its last 64 bytes, after 0x04).
fn sm2_xy(spki: &[u8]) -> &[u8] {
    assert_eq!(spki.len(), 91);
    assert_eq!(spki[26], 0x04);
    &spki[27..]
}

fn sm2_checks(python: &Path, with_openssl: bool, d: &Path, checks: &mut Vec<String>) {
    let ours = PrivateKey::generate(KeySpec::EcSm2, &mut SysRng).unwrap();
    let ours_pub = ours.public_key();
    let ours_xy = hexs(sm2_xy(&ours_pub.to_der().unwrap()));
    let msg = b"SM2 message, signed over Z(A) || M";

    // Our SM2DSA, verified by gmssl (raw r||s) and OpenSSL (DER, -rawin).
    let e = sm2_digest(&ours_pub, msg).unwrap();
    let sig = ours
        .sign_digest(Algorithm::Sm2Dsa, &e, &mut SysRng)
        .unwrap();
    let gm_prelude = r#"
from gmssl import sm2, func
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
"#;
    let r = py(
        python,
        &format!(
            r#"{gm_prelude}
c = sm2.CryptSM2(private_key=None, public_key=inp["xy"], mode=1)
r, s = decode_dss_signature(H(inp["sig"]))
raw = "%064x%064x" % (r, s)
bad = "%064x%064x" % (r, (s + 1))
print(json.dumps([bool(c.verify_with_sm3(raw, H(inp["msg"]))), bool(c.verify_with_sm3(bad, H(inp["msg"])))]))
"#
        ),
        &json!({"xy": ours_xy, "sig": hexs(&sig), "msg": hexs(msg)}),
    );
    assert_eq!(r, json!([true, false]), "gmssl on our SM2DSA");
    checks.push("gmssl verifies our SM2DSA".into());
    let sm2_pub_path = write(d, "sm2_pub.pem", ours.public_key_pem().unwrap().as_bytes());
    if with_openssl {
        let msg_path = write(d, "sm2_msg.bin", msg);
        let sig_path = write(d, "sm2_sig.bin", &sig);
        let args = [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &sm2_pub_path,
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
        assert!(openssl(&args).0, "openssl rejects our SM2DSA");
        write(d, "sm2_msg.bin", b"another message");
        assert!(!openssl(&args).0);
        checks.push("openssl verifies our SM2DSA (distid 1234567812345678)".into());
    }

    // gmssl signs and encrypts with its own key; we verify and decrypt; we
    // encrypt to that key and gmssl decrypts.
    let r = py(
        python,
        &format!(
            r#"{gm_prelude}
import secrets
n = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
d = secrets.randbelow(n - 2) + 1
c0 = sm2.CryptSM2(private_key="%064x" % d, public_key="", mode=1)
xy = c0._kg(d, sm2.default_ecc_table["g"])
c = sm2.CryptSM2(private_key="%064x" % d, public_key=xy, mode=1)
raw = c.sign_with_sm3(H(inp["msg"]))
sig = encode_dss_signature(int(raw[:64], 16), int(raw[64:], 16))
ct = c.encrypt(H(inp["msg"]))
print(json.dumps({{"xy": xy, "d": "%064x" % d, "sig": sig.hex(), "ct": ct.hex()}}))
"#
        ),
        &json!({"msg": hexs(msg)}),
    );
    let gm_pub = PublicKey::from_public_key_der(
        KeySpec::EcSm2,
        &sm2_spki(&unhex(r["xy"].as_str().unwrap())),
    )
    .unwrap();
    let e = sm2_digest(&gm_pub, msg).unwrap();
    assert!(
        gm_pub
            .verify_digest(Algorithm::Sm2Dsa, &e, &unhex(r["sig"].as_str().unwrap()))
            .unwrap()
    );
    assert!(
        !gm_pub
            .verify_digest(
                Algorithm::Sm2Dsa,
                &sha256(msg),
                &unhex(r["sig"].as_str().unwrap())
            )
            .unwrap()
    );
    checks.push("we verify gmssl's SM2DSA".into());
    let ct = gm_pub.encrypt(Algorithm::Sm2Pke, msg, &mut SysRng).unwrap();
    let out = py(
        python,
        &format!(
            r#"{gm_prelude}
c = sm2.CryptSM2(private_key=inp["d"], public_key=inp["xy"], mode=1)
print(json.dumps(c.decrypt(H(inp["ct"])).hex()))
"#
        ),
        &json!({"d": r["d"], "xy": r["xy"], "ct": hexs(&sm2_asn1_to_raw(&ct))}),
    );
    assert_eq!(out, json!(hexs(msg)));
    checks.push("gmssl decrypts our SM2PKE (ASN.1 -> raw C1C3C2)".into());

    // gmssl encrypts to our key (raw C1C3C2 -> ASN.1); we decrypt.
    let out = py(
        python,
        &format!(
            r#"{gm_prelude}
c = sm2.CryptSM2(private_key=None, public_key=inp["xy"], mode=1)
print(json.dumps(c.encrypt(H(inp["msg"])).hex()))
"#
        ),
        &json!({"xy": ours_xy, "msg": hexs(msg)}),
    );
    let der = sm2_raw_to_asn1(&unhex(out.as_str().unwrap()));
    assert_eq!(
        &ours.decrypt(Algorithm::Sm2Pke, &der, &mut SysRng).unwrap()[..],
        msg
    );
    checks.push("we decrypt gmssl's SM2PKE (raw C1C3C2 -> ASN.1)".into());

    if with_openssl {
        // OpenSSL 3 encrypts to our key in GM/T 0009 ASN.1; we decrypt.
        let pt_path = write(d, "sm2_pt.bin", msg);
        let (ok, ct) = openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &sm2_pub_path,
            "-in",
            &pt_path,
        ]);
        assert!(ok);
        assert_eq!(
            &ours.decrypt(Algorithm::Sm2Pke, &ct, &mut SysRng).unwrap()[..],
            msg
        );
        checks.push("we decrypt openssl's SM2PKE".into());

        // OpenSSL signs and decrypts with its own key.
        let key_path = d.join("sm2_tool.pem").to_str().unwrap().to_owned();
        let pub_path = d.join("sm2_tool_pub.pem").to_str().unwrap().to_owned();
        assert!(openssl(&["genpkey", "-algorithm", "SM2", "-out", &key_path]).0);
        assert!(openssl(&["pkey", "-in", &key_path, "-pubout", "-out", &pub_path]).0);
        let tool_pub =
            PublicKey::from_pem(KeySpec::EcSm2, &std::fs::read_to_string(&pub_path).unwrap())
                .unwrap();
        let msg_path = write(d, "sm2_msg.bin", msg);
        let (ok, sig) = openssl(&[
            "pkeyutl",
            "-sign",
            "-inkey",
            &key_path,
            "-rawin",
            "-in",
            &msg_path,
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
        ]);
        assert!(ok);
        let e = sm2_digest(&tool_pub, msg).unwrap();
        assert!(tool_pub.verify_digest(Algorithm::Sm2Dsa, &e, &sig).unwrap());
        checks.push("we verify openssl's SM2DSA".into());
        let ct = tool_pub
            .encrypt(Algorithm::Sm2Pke, msg, &mut SysRng)
            .unwrap();
        let ct_path = write(d, "sm2_ct.bin", &ct);
        let (ok, pt) = openssl(&["pkeyutl", "-decrypt", "-inkey", &key_path, "-in", &ct_path]);
        assert!(ok, "openssl cannot decrypt our SM2PKE");
        assert_eq!(pt, msg);
        // OpenSSL checks C3: a flipped C3 byte is refused.
        let mut bad = ct.clone();
        let c3_last = ct.len() - msg.len() - 3; // C2 is the last TLV: tag, len, body
        bad[c3_last] ^= 1;
        write(d, "sm2_ct.bin", &bad);
        assert!(!openssl(&["pkeyutl", "-decrypt", "-inkey", &key_path, "-in", &ct_path]).0);
        checks.push("openssl decrypts our SM2PKE and checks its C3".into());
    }
}
