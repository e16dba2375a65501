//! Helpers for the tests that check results with outside tools: Python
//! (`cryptography`, `gmssl`) and OpenSSL (tests/asym_crosscheck.rs,
//! tests/asym_service_crosscheck.rs, tests/export_crosscheck.rs).

#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

pub const OPENSSL: &str = "/usr/bin/openssl";

pub fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs a Python snippet that reads JSON `inp` from stdin and prints JSON
/// (`sys`, `json` and `base64` imported; `H` is `bytes.fromhex`).
pub fn py(python: &Path, body: &str, input: &Value) -> Value {
    let script = format!(
        "import sys, json, base64\ninp = json.load(sys.stdin)\nH = bytes.fromhex\n{body}\n"
    );
    let mut child = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs openssl; returns (success, stdout).
pub fn openssl(args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new(OPENSSL).args(args).output().unwrap();
    if !out.status.success() {
        eprintln!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), out.stdout)
}

/// Writes `data` to `dir/name`; returns the path as text.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Minimal DER for the GM/T 0009 SM2 ciphertext, from gmssl's raw C1C3C2.
pub fn sm2_raw_to_asn1(raw: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = body.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(body);
        out
    }
    fn int(b: &[u8]) -> Vec<u8> {
        let mut b = b;
        while b.len() > 1 && b[0] == 0 && b[1] < 0x80 {
            b = &b[1..];
        }
        let mut v = Vec::new();
        if b[0] >= 0x80 {
            v.push(0);
        }
        v.extend_from_slice(b);
        tlv(0x02, &v)
    }
    let mut body = int(&raw[..32]);
    body.extend(int(&raw[32..64]));
    body.extend(tlv(0x04, &raw[64..96]));
    body.extend(tlv(0x04, &raw[96..]));
    tlv(0x30, &body)
}

/// gmssl's raw C1C3C2 (no 0x04 prefix) from the GM/T 0009 DER, with a tiny
/// DER reader that knows only this structure.
pub fn sm2_asn1_to_raw(der: &[u8]) -> Vec<u8> {
    fn read(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = d[0];
        let (len, hdr) = match d[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 => (d[2] as usize, 3),
            0x82 => ((d[2] as usize) << 8 | d[3] as usize, 4),
            _ => panic!("long length"),
        };
        (tag, &d[hdr..hdr + len], &d[hdr + len..])
    }
    let (tag, body, rest) = read(der);
    assert_eq!((tag, rest.len()), (0x30, 0));
    let mut out = Vec::new();
    let mut b = body;
    for i in 0..4 {
        let (tag, v, r) = read(b);
        b = r;
        if i < 2 {
            assert_eq!(tag, 0x02);
            let v = if v.len() == 33 { &v[1..] } else { v };
            out.extend(std::iter::repeat_n(0u8, 32 - v.len()));
            out.extend_from_slice(v);
        } else {
            assert_eq!(tag, 0x04);
            out.extend_from_slice(v);
        }
    }
    assert!(b.is_empty());
    out
}
