//! ExportDataKey and GenerateAndExportDataKey against implementations this
//! project did not write: the wrapping key pair is made by the other tool,
//! the export goes through the wire, the other tool unwraps with its
//! private key, and the result must equal the data key GenerateDataKey
//! returned (or Decrypt of GenerateAndExportDataKey's blob gives).
//!
//! - RSA_2048 with RSAES_OAEP_SHA_256 and RSAES_OAEP_SHA_1: Python
//!   `cryptography`;
//! - EC_SM2 with SM2PKE: `gmssl` (pure-Python SM2; raw C1C3C2, converted from
//!   our GM/T 0009 ASN.1 here) and OpenSSL 3 (`pkeyutl -decrypt`, which also
//!   checks C3).
//!
//! Python comes from `LOCALKMS_PYTHON` (set by `scripts/test.sh`), else
//! `python3` if it has the modules. Without them the test prints a loud
//! SKIPPED line, except under `CI=true`, where it fails.

#[path = "support/crosscheck.rs"]
mod crosscheck;
use crosscheck::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use localkms::{Kms, wire};
use serde_json::{Value, json};

fn tools() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let python = std::env::var_os("LOCALKMS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python)
        .args(["-c", "import cryptography, gmssl"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let msg = "export cross-checks need Python with cryptography and gmssl \
               (set LOCALKMS_PYTHON, see scripts/test.sh)";
    assert!(!ci, "{msg}");
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    None
}

fn ok(kms: &Kms, p: &[(&str, &str)]) -> Value {
    let pairs: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let r = wire::dispatch(kms, &pairs);
    assert_eq!(r.status, 200, "{p:?}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

/// Both exports of one wrapping; returns pairs of (expected data key,
/// exported data key), base64.
fn exports(
    kms: &Kms,
    key: &str,
    public_key_blob: &str,
    alg: &str,
    spec: &str,
) -> Vec<(String, String)> {
    let ctx = r#"{"purpose":"crosscheck"}"#;
    let gdk = ok(
        kms,
        &[
            ("Action", "GenerateDataKey"),
            ("KeyId", key),
            ("EncryptionContext", ctx),
        ],
    );
    let exported = ok(
        kms,
        &[
            ("Action", "ExportDataKey"),
            ("CiphertextBlob", &s(&gdk["CiphertextBlob"])),
            ("EncryptionContext", ctx),
            ("PublicKeyBlob", public_key_blob),
            ("WrappingAlgorithm", alg),
            ("WrappingKeySpec", spec),
        ],
    );
    let both = ok(
        kms,
        &[
            ("Action", "GenerateAndExportDataKey"),
            ("KeyId", key),
            ("KeySpec", "AES_128"),
            ("PublicKeyBlob", public_key_blob),
            ("WrappingAlgorithm", alg),
            ("WrappingKeySpec", spec),
        ],
    );
    let opened = ok(
        kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", &s(&both["CiphertextBlob"])),
        ],
    );
    vec![
        (s(&gdk["Plaintext"]), s(&exported["ExportedDataKey"])),
        (s(&opened["Plaintext"]), s(&both["ExportedDataKey"])),
    ]
}

#[test]
fn exported_data_keys_unwrap_elsewhere() {
    let Some(python) = tools() else {
        return;
    };
    let kms = Kms::in_memory().unwrap();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let mut checks = Vec::new();

    // RSA: the key pair is cryptography's.
    let rsa = py(
        &python,
        r#"
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pub = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
priv = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
print(json.dumps({"pub": base64.b64encode(pub).decode(), "priv": base64.b64encode(priv).decode()}))
"#,
        &json!({}),
    );
    for (alg, hash) in [
        ("RSAES_OAEP_SHA_256", "SHA256"),
        ("RSAES_OAEP_SHA_1", "SHA1"),
    ] {
        for (want, exported) in exports(&kms, &key, &s(&rsa["pub"]), alg, "RSA_2048") {
            let got = py(
                &python,
                r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
k = serialization.load_der_private_key(base64.b64decode(inp["priv"]), None)
h = getattr(hashes, inp["hash"])()
pt = k.decrypt(base64.b64decode(inp["ct"]), padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None))
print(json.dumps(base64.b64encode(pt).decode()))
"#,
                &json!({"priv": rsa["priv"], "hash": hash, "ct": exported}),
            );
            assert_eq!(s(&got), want, "cryptography unwraps our {alg} export");
        }
        checks.push(format!("cryptography unwraps {alg} exports"));
    }

    // SM2: the key pair is gmssl's.
    let sm2 = py(
        &python,
        r#"
import secrets
from gmssl import sm2
n = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
d = secrets.randbelow(n - 2) + 1
c0 = sm2.CryptSM2(private_key="%064x" % d, public_key="", mode=1)
xy = c0._kg(d, sm2.default_ecc_table["g"])
spki = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004" + xy)
print(json.dumps({"d": "%064x" % d, "xy": xy, "pub": base64.b64encode(spki).decode()}))
"#,
        &json!({}),
    );
    for (want, exported) in exports(&kms, &key, &s(&sm2["pub"]), "SM2PKE", "EC_SM2") {
        let der = STANDARD.decode(&exported).unwrap();
        let raw: String = sm2_asn1_to_raw(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let got = py(
            &python,
            r#"
from gmssl import sm2
c = sm2.CryptSM2(private_key=inp["d"], public_key=inp["xy"], mode=1)
print(json.dumps(base64.b64encode(c.decrypt(bytes.fromhex(inp["ct"]))).decode()))
"#,
            &json!({"d": sm2["d"], "xy": sm2["xy"], "ct": raw}),
        );
        assert_eq!(s(&got), want, "gmssl unwraps our SM2PKE export");
    }
    checks.push("gmssl unwraps SM2PKE exports".into());

    // SM2 again, the key pair OpenSSL's: its decrypt checks C3 as well.
    let with_openssl = Path::new(OPENSSL).exists();
    if with_openssl {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("sm2.pem");
        let pub_path = dir.path().join("sm2.pub.der");
        let ct_path = dir.path().join("ct.der");
        let run = |args: &[&std::ffi::OsStr]| {
            let out = Command::new(OPENSSL).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        run(&[
            "genpkey".as_ref(),
            "-algorithm".as_ref(),
            "SM2".as_ref(),
            "-out".as_ref(),
            key_path.as_os_str(),
        ]);
        run(&[
            "pkey".as_ref(),
            "-in".as_ref(),
            key_path.as_os_str(),
            "-pubout".as_ref(),
            "-outform".as_ref(),
            "DER".as_ref(),
            "-out".as_ref(),
            pub_path.as_os_str(),
        ]);
        let public = STANDARD.encode(std::fs::read(&pub_path).unwrap());
        for (want, exported) in exports(&kms, &key, &public, "SM2PKE", "EC_SM2") {
            std::fs::write(&ct_path, STANDARD.decode(&exported).unwrap()).unwrap();
            let pt = run(&[
                "pkeyutl".as_ref(),
                "-decrypt".as_ref(),
                "-inkey".as_ref(),
                key_path.as_os_str(),
                "-in".as_ref(),
                ct_path.as_os_str(),
            ]);
            assert_eq!(
                STANDARD.encode(pt),
                want,
                "openssl unwraps our SM2PKE export"
            );
        }
    }

    if with_openssl {
        checks.push("openssl unwraps SM2PKE exports (C3 checked)".into());
    } else {
        eprintln!("!!!!! SKIPPED: OpenSSL SM2 export check: {OPENSSL} not found !!!!!");
    }
    eprintln!("export cross-checks passed: {checks:#?}");
}
