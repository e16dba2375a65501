//! Request signatures (SPEC section 7): the reference's v1 vector, and the
//! real requests of both Python SDKs in `tests/data/wire-captures.jsonl`
//! (ACS3-HMAC-SHA256 and v1 HMAC-SHA1), each checked for acceptance, replay,
//! the timestamp window, and the rejection of every one-byte change to a
//! signed parameter or header.

use localkms::wire::sign::{MAX_NONCE_CHARS, SIGNATURE_WINDOW_SECONDS, v1_signature};
use localkms::wire::{self, HttpRequest, Verifier};
use localkms::{Kms, ManualClock, parse_timestamp};
use serde_json::Value;

const CAPTURES: &str = include_str!("data/wire-captures.jsonl");

/// One captured request.
#[derive(Clone, Debug)]
struct Capture {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The `query` field: the decoded query parameters.
    query: Vec<(String, String)>,
}

impl Capture {
    fn request(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: &self.method,
            target: &self.target,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_acs3(&self) -> bool {
        self.header("authorization").is_some()
    }

    /// The request's own time: `x-acs-date` or `Timestamp`.
    fn time(&self) -> i64 {
        let text = match self.header("x-acs-date") {
            Some(t) => t.to_owned(),
            None => self
                .query
                .iter()
                .find(|(k, _)| k == "Timestamp")
                .map(|(_, v)| v.clone())
                .expect("a Timestamp"),
        };
        parse_timestamp(&text).expect("a valid timestamp")
    }

    /// The headers the signature covers.
    fn signed_headers(&self) -> Vec<String> {
        let Some(auth) = self.header("authorization") else {
            return Vec::new();
        };
        let list = auth
            .split(',')
            .find_map(|p| p.trim().strip_prefix("SignedHeaders="))
            .expect("SignedHeaders");
        list.split(';').map(str::to_owned).collect()
    }

    /// The same request with its query rebuilt from `query` (percent-encoded
    /// afresh, so the raw text differs from what the SDK sent).
    fn with_query(&self, query: &[(String, String)]) -> Self {
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        Self {
            target: format!("/?{}", encoded.join("&")),
            ..self.clone()
        }
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn captures() -> Vec<Capture> {
    CAPTURES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("capture JSON");
            let pairs = |o: &Value| -> Vec<(String, String)> {
                o.as_object()
                    .expect("an object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
                    .collect()
            };
            Capture {
                method: v["method"].as_str().expect("method").to_owned(),
                target: v["raw_path"].as_str().expect("raw_path").to_owned(),
                headers: pairs(&v["headers"]),
                body: v["body"].as_str().expect("body").as_bytes().to_vec(),
                query: pairs(&v["query"]),
            }
        })
        .collect()
}

fn kms_at(t: i64) -> (Kms, ManualClock) {
    let clock = ManualClock::new(t);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    (kms, clock)
}

fn verifier() -> Verifier {
    Verifier::new("testid", "testsecret")
}

fn code(r: localkms::Result<Vec<(String, String)>>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// Changes one byte of `s`: its first character becomes another letter.
fn change_one_byte(s: &str) -> String {
    match s.chars().next() {
        None => "a".to_owned(),
        Some(c) => {
            let replacement = if c == 'a' { 'b' } else { 'a' };
            let mut out = String::from(replacement);
            out.push_str(&s[c.len_utf8()..]);
            out
        }
    }
}

#[test]
fn there_are_captures_of_both_schemes() {
    let all = captures();
    assert_eq!(all.len(), 19);
    assert!(all.iter().filter(|c| c.is_acs3()).count() >= 8);
    assert!(all.iter().filter(|c| !c.is_acs3()).count() >= 8);
}

#[test]
fn every_capture_verifies_and_yields_its_parameters() {
    for c in captures() {
        let (kms, _) = kms_at(c.time());
        let params = verifier()
            .verify(&kms, &c.request())
            .unwrap_or_else(|e| panic!("{} {}: {e}", c.method, c.target));
        for (k, v) in &c.query {
            assert!(
                params.contains(&(k.clone(), v.clone())),
                "{k} missing from {params:?}"
            );
        }
        let action = c.header("x-acs-action").expect("x-acs-action");
        let actions: Vec<_> = params.iter().filter(|(k, _)| k == "Action").collect();
        assert_eq!(actions, [&("Action".to_owned(), action.to_owned())]);
    }
}

#[test]
fn signatures_cover_decoded_values_not_their_spelling() {
    let mut respelled_differently = 0;
    for c in captures() {
        let (kms, _) = kms_at(c.time());
        let respelled = c.with_query(&c.query);
        respelled_differently += usize::from(respelled.target != c.target);
        verifier()
            .verify(&kms, &respelled.request())
            .unwrap_or_else(|e| panic!("{}: {e}", respelled.target));
    }
    assert!(respelled_differently >= 10, "{respelled_differently}");
}

#[test]
fn a_replayed_nonce_is_refused_within_the_window() {
    for c in captures() {
        let (kms, clock) = kms_at(c.time());
        let v = verifier();
        assert_eq!(code(v.verify(&kms, &c.request())), "ok");
        assert_eq!(
            code(v.verify(&kms, &c.request())),
            "SignatureNonceUsed",
            "{}",
            c.target
        );
        clock.advance(SIGNATURE_WINDOW_SECONDS);
        assert_eq!(code(v.verify(&kms, &c.request())), "SignatureNonceUsed");
        // Past the window the timestamp refuses it, not a forgotten nonce.
        clock.advance(1);
        assert_eq!(code(v.verify(&kms, &c.request())), "IllegalTimestamp");
    }
}

#[test]
fn the_timestamp_window_is_15_minutes_both_ways() {
    for c in captures() {
        for (offset, want) in [
            (-SIGNATURE_WINDOW_SECONDS - 1, "IllegalTimestamp"),
            (-SIGNATURE_WINDOW_SECONDS, "ok"),
            (SIGNATURE_WINDOW_SECONDS, "ok"),
            (SIGNATURE_WINDOW_SECONDS + 1, "IllegalTimestamp"),
            (-86_400 * 365, "IllegalTimestamp"),
        ] {
            let (kms, _) = kms_at(c.time() + offset);
            assert_eq!(
                code(verifier().verify(&kms, &c.request())),
                want,
                "{offset} {}",
                c.target
            );
        }
    }
}

#[test]
fn changing_one_byte_of_any_signed_parameter_fails() {
    let mut checked = 0;
    for c in captures() {
        for i in 0..c.query.len() {
            for part in ["name", "value"] {
                let mut q = c.query.clone();
                if part == "name" {
                    q[i].0 = change_one_byte(&q[i].0);
                } else {
                    q[i].1 = change_one_byte(&q[i].1);
                }
                let (kms, _) = kms_at(c.time());
                let got = code(verifier().verify(&kms, &c.with_query(&q).request()));
                assert_ne!(got, "ok", "{part} of {} in {}", c.query[i].0, c.target);
                checked += 1;
            }
        }
        // Dropping a parameter or adding one fails too.
        for i in 0..c.query.len() {
            let mut q = c.query.clone();
            q.remove(i);
            let (kms, _) = kms_at(c.time());
            assert_ne!(
                code(verifier().verify(&kms, &c.with_query(&q).request())),
                "ok"
            );
        }
        let mut q = c.query.clone();
        q.push(("KeyId".into(), "extra".into()));
        let (kms, _) = kms_at(c.time());
        assert_ne!(
            code(verifier().verify(&kms, &c.with_query(&q).request())),
            "ok"
        );
    }
    assert!(checked > 150, "{checked}");
}

#[test]
fn changing_one_byte_of_any_signed_header_fails() {
    let mut checked = 0;
    for c in captures().into_iter().filter(Capture::is_acs3) {
        for name in c.signed_headers() {
            let mut m = c.clone();
            let h = m
                .headers
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                .expect("signed header present");
            h.1 = change_one_byte(&h.1);
            let (kms, _) = kms_at(c.time());
            let got = code(verifier().verify(&kms, &m.request()));
            assert_ne!(got, "ok", "header {name} of {}", c.target);
            checked += 1;
        }
        // The Authorization header's own parts.
        let auth = c.header("authorization").expect("auth").to_owned();
        for (from, to) in [
            ("Signature=", "Signature=0"),
            ("Credential=t", "Credential=x"),
        ] {
            let mut m = c.clone();
            for h in &mut m.headers {
                if h.0.eq_ignore_ascii_case("authorization") {
                    h.1 = auth.replacen(from, to, 1);
                }
            }
            let (kms, _) = kms_at(c.time());
            assert_ne!(code(verifier().verify(&kms, &m.request())), "ok");
        }
    }
    assert!(checked >= 70, "{checked}");
}

#[test]
fn the_method_the_body_and_unsigned_headers() {
    for c in captures() {
        // The method is signed.
        let mut m = c.clone();
        m.method = "GET".into();
        let (kms, _) = kms_at(c.time());
        assert_eq!(
            code(verifier().verify(&kms, &m.request())),
            "IncompleteSignature"
        );
        // A body added to the request: ACS3 hashes it; v1 signs it as form
        // parameters when it is a form.
        let mut m = c.clone();
        m.body = b"KeyId=other".to_vec();
        m.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        m.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        let (kms, _) = kms_at(c.time());
        assert_eq!(
            code(verifier().verify(&kms, &m.request())),
            "IncompleteSignature",
            "{}",
            c.target
        );
        // An unsigned header that is neither x-acs-* nor host or
        // content-type may change freely.
        let mut m = c.clone();
        for h in &mut m.headers {
            if h.0.eq_ignore_ascii_case("accept-encoding") {
                h.1 = "gzip".into();
            }
        }
        let (kms, _) = kms_at(c.time());
        assert_eq!(code(verifier().verify(&kms, &m.request())), "ok");
    }
}

#[test]
fn an_unsigned_x_acs_header_is_refused() {
    for c in captures().into_iter().filter(Capture::is_acs3) {
        let mut m = c.clone();
        m.headers.push(("x-acs-extra".into(), "1".into()));
        let (kms, _) = kms_at(c.time());
        assert_eq!(
            code(verifier().verify(&kms, &m.request())),
            "IncompleteSignature"
        );
    }
}

#[test]
fn in_v1_the_action_header_is_not_trusted() {
    // v1 signs the query only: an x-acs-action header cannot change the
    // action, which is the signed Action parameter.
    for c in captures().into_iter().filter(|c| !c.is_acs3()) {
        let mut m = c.clone();
        for h in &mut m.headers {
            if h.0.eq_ignore_ascii_case("x-acs-action") {
                h.1 = "DeleteKeyMaterial".into();
            }
        }
        let (kms, _) = kms_at(c.time());
        let params = verifier().verify(&kms, &m.request()).expect("verifies");
        let action = c.query.iter().find(|(k, _)| k == "Action").expect("Action");
        assert!(params.contains(action));
        assert!(!params.iter().any(|(_, v)| v == "DeleteKeyMaterial"));
    }
}

#[test]
fn wrong_credentials() {
    for c in captures() {
        let (kms, _) = kms_at(c.time());
        assert_eq!(
            code(Verifier::new("otherid", "testsecret").verify(&kms, &c.request())),
            "InvalidAccessKeyId.NotFound"
        );
        assert_eq!(
            code(Verifier::new("testid", "testsecreT").verify(&kms, &c.request())),
            "IncompleteSignature"
        );
    }
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The reference's CreateKey example, through `verify`: the signature
/// passes, and the request is then refused only for its missing nonce.
#[test]
fn v1_reference_vector_through_verify() {
    let params = owned(&[
        ("Action", "CreateKey"),
        ("Format", "json"),
        ("Version", "2016-01-20"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("Timestamp", "2016-03-28T03:13:08Z"),
        ("SignatureVersion", "1.0"),
    ]);
    assert_eq!(
        v1_signature("GET", &params, "testsecret"),
        "41wk2SSX1GJh7fwnc5eqOfiJPFg="
    );
    let target = "/?Signature=41wk2SSX1GJh7fwnc5eqOfiJPFg%3D&Action=CreateKey&Format=json\
                  &Version=2016-01-20&AccessKeyId=testid&SignatureMethod=HMAC-SHA1\
                  &Timestamp=2016-03-28T03%3A13%3A08Z&SignatureVersion=1.0";
    let req = HttpRequest {
        method: "GET",
        target,
        headers: &[],
        body: b"",
    };
    let (kms, _) = kms_at(parse_timestamp("2016-03-28T03:13:08Z").expect("time"));
    let e = verifier().verify(&kms, &req).unwrap_err();
    assert_eq!(e, localkms::Error::MissingParameter("SignatureNonce"));
    let wrong = target.replace("41wk", "41wj");
    let req = HttpRequest {
        target: &wrong,
        ..req
    };
    assert_eq!(code(verifier().verify(&kms, &req)), "IncompleteSignature");
}

/// A v1 request signed here, sent as a form body: accepted, and its
/// parameters come from the body.
#[test]
fn v1_form_body() {
    let (kms, _) = kms_at(1_800_000_000);
    let mut params = owned(&[
        ("Action", "DescribeRegions"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "n1"),
        ("Timestamp", &localkms::format_timestamp(1_800_000_000)),
        ("Description", "a b+c&d=é"),
    ]);
    let sig = v1_signature("POST", &params, "testsecret");
    params.push(("Signature".into(), sig));
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    let body = body.join("&");
    let headers = owned(&[("Content-Type", "application/x-www-form-urlencoded")]);
    let req = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        body: body.as_bytes(),
    };
    let got = verifier().verify(&kms, &req).expect("verifies");
    assert!(got.contains(&("Description".into(), "a b+c&d=é".into())));
    // Without the form content type the body is not parameters, so the
    // request carries no signature at all.
    let req = HttpRequest {
        headers: &[],
        ..req
    };
    assert_eq!(code(verifier().verify(&kms, &req)), "IncompleteSignature");
}

#[test]
fn malformed_requests_get_their_wire_codes() {
    let (kms, _) = kms_at(1_800_000_000);
    let v = verifier();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("PUT", "/?Action=ListKeys", &[], "UnsupportedHTTPMethod"),
        ("DELETE", "/", &[], "UnsupportedHTTPMethod"),
        ("GET", "/?Action=ListKeys", &[], "IncompleteSignature"),
        ("GET", "/", &[], "IncompleteSignature"),
        (
            "GET",
            "/?Action=ListKeys&Signature=x",
            &[],
            "IncompleteSignature",
        ),
        (
            "GET",
            "/?Action=ListKeys&Signature=x&SignatureMethod=HMAC-SHA256",
            &[],
            "IncompleteSignature",
        ),
        (
            "GET",
            "/?Action=ListKeys&Signature=x&SignatureMethod=HMAC-SHA1",
            &[],
            "MissingParameter",
        ),
        (
            "GET",
            "/?Action=ListKeys&Signature=x&SignatureMethod=HMAC-SHA1&AccessKeyId=nobody",
            &[],
            "InvalidAccessKeyId.NotFound",
        ),
        (
            "GET",
            "/?Action=ListKeys&Signature=x&SignatureMethod=HMAC-SHA1&AccessKeyId=testid",
            &[],
            "IncompleteSignature",
        ),
        (
            "POST",
            "/",
            &[("Authorization", "Basic dGVzdA==")],
            "IncompleteSignature",
        ),
        (
            "POST",
            "/",
            &[("Authorization", "ACS3-HMAC-SHA256 garbage")],
            "IncompleteSignature",
        ),
        (
            "POST",
            "/",
            &[(
                "Authorization",
                "ACS3-HMAC-SHA256 Credential=nobody,SignedHeaders=host,Signature=00",
            )],
            "InvalidAccessKeyId.NotFound",
        ),
        (
            "POST",
            "/",
            &[(
                "Authorization",
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host,Signature=00",
            )],
            "IncompleteSignature",
        ),
    ];
    for (method, target, headers, want) in cases {
        let headers = owned(headers);
        let req = HttpRequest {
            method,
            target,
            headers: &headers,
            body: b"",
        };
        assert_eq!(code(v.verify(&kms, &req)), *want, "{method} {target}");
    }
}

/// A request signed here with a timestamp that does not parse.
#[test]
fn v1_malformed_timestamp_is_illegal() {
    let (kms, _) = kms_at(1_800_000_000);
    for ts in [
        "",
        "yesterday",
        "2027-01-15T08:00:00",
        "2027-01-15 08:00:00Z",
    ] {
        let mut params = owned(&[
            ("Action", "DescribeRegions"),
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "n"),
            ("Timestamp", ts),
        ]);
        let sig = v1_signature("GET", &params, "testsecret");
        params.push(("Signature".into(), sig));
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let target = format!("/?{}", q.join("&"));
        let req = HttpRequest {
            method: "GET",
            target: &target,
            headers: &[],
            body: b"",
        };
        assert_eq!(
            code(verifier().verify(&kms, &req)),
            "IllegalTimestamp",
            "{ts}"
        );
    }
}

/// `handle` answers a failed verification in the requested format.
#[test]
fn handle_renders_verification_failures() {
    let (kms, _) = kms_at(1_800_000_000);
    let req = HttpRequest {
        method: "GET",
        target: "/?Action=ListKeys&Format=XML",
        headers: &[],
        body: b"",
    };
    let r = wire::handle(&kms, &verifier(), &req);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("<Code>IncompleteSignature</Code>"),
        "{}",
        r.body
    );
    let req = HttpRequest {
        method: "PATCH",
        target: "/",
        ..req
    };
    let r = wire::handle(&kms, &verifier(), &req);
    assert_eq!(r.status, 403);
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["Code"], "UnsupportedHTTPMethod");
    assert_eq!(v["HttpStatus"], 403);
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Authorization",
            "authorization",
            "host",
            "content-type",
            "x-acs-action",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-content-sha256",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z-]{1,12}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-date,Signature=00"
                .to_owned()
        ),
        Just("ACS3-HMAC-SHA256 ,,==,".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("2026-11-27T18:00:42Z".to_owned()),
        Just("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned()),
        any::<String>(),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "/\\?([A-Za-z%+=&0-9.~-]{0,60})",
        Just("/?Action=ListKeys&Signature=x&SignatureMethod=HMAC-SHA1&AccessKeyId=testid&Timestamp=2026-11-27T18%3A00%3A42Z&SignatureNonce=n".to_owned()),
    ]
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// No request makes verification and dispatch panic or answer 500.
    #[test]
    fn arbitrary_http_requests_never_panic_or_500(
        method in prop_oneof![Just("GET".to_owned()), Just("POST".to_owned()), "[A-Z]{0,8}"],
        target in target(),
        headers in prop::collection::vec((header_name(), header_value()), 0..6),
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..64), "[A-Za-z%+=&0-9]{0,64}".prop_map(String::into_bytes)],
    ) {
        let (kms, _) = kms_at(parse_timestamp("2026-11-27T18:00:42Z").expect("time"));
        let req = HttpRequest { method: &method, target: &target, headers: &headers, body: &body };
        let r = wire::handle(&kms, &verifier(), &req);
        prop_assert_ne!(r.status, 500);
        prop_assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    }
}

/// An independent ACS3-HMAC-SHA256 signer (as `alibabacloud_openapi_util`
/// does it): signs every header given, after adding the body hash.
fn acs3_sign(
    method: &str,
    query: &[(String, String)],
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    secret: &str,
) -> String {
    use hmac::{KeyInit as _, Mac as _};
    use sha2::Digest as _;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    headers.push((
        "x-acs-content-sha256".into(),
        hex(&sha2::Sha256::digest(body)),
    ));
    let mut q: Vec<(String, String)> = query.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    q.sort();
    let canonical_query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    h.sort();
    // A repeated header is one line, its sorted values joined by `,`.
    let mut joined: Vec<(String, String)> = Vec::new();
    for (k, v) in h {
        match joined.last_mut() {
            Some((last, values)) if *last == k => {
                values.push(',');
                values.push_str(&v);
            }
            _ => joined.push((k, v)),
        }
    }
    let h = joined;
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let request = format!(
        "{method}\n/\n{}\n{canonical_headers}\n{signed}\n{}",
        canonical_query.join("&"),
        hex(&sha2::Sha256::digest(body))
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex(&sha2::Sha256::digest(request.as_bytes()))
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(to_sign.as_bytes());
    let sig = hex(&mac.finalize().into_bytes());
    headers.push((
        "Authorization".into(),
        format!("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={signed},Signature={sig}"),
    ));
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    format!("/?{}", encoded.join("&"))
}

#[test]
fn acs3_signed_here_with_a_form_body() {
    let t = 1_800_000_000;
    let (kms, _) = kms_at(t);
    let mut headers = owned(&[
        ("host", "127.0.0.1:1"),
        ("x-acs-action", "CreateKey"),
        ("x-acs-date", &localkms::format_timestamp(t)),
        ("x-acs-signature-nonce", "n-1"),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let body = b"Description=from+the+body%21";
    let target = acs3_sign(
        "POST",
        &owned(&[("Origin", "EXTERNAL")]),
        &mut headers,
        body,
        "testsecret",
    );
    let req = HttpRequest {
        method: "POST",
        target: &target,
        headers: &headers,
        body,
    };
    let params = verifier().verify(&kms, &req).expect("verifies");
    for want in [
        ("Action", "CreateKey"),
        ("Origin", "EXTERNAL"),
        ("Description", "from the body!"),
    ] {
        assert!(
            params.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {params:?}"
        );
    }
    let r = wire::dispatch(&kms, &params);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("from the body!"));
    // The body is covered by the hash: change one byte.
    let tampered = b"Description=from+the+body%22";
    let req = HttpRequest {
        body: tampered,
        ..req
    };
    assert_eq!(code(verifier().verify(&kms, &req)), "IncompleteSignature");
}

#[test]
fn acs3_without_date_or_nonce() {
    let t = 1_800_000_000;
    let (kms, _) = kms_at(t);
    let date = localkms::format_timestamp(t);
    for (drop, want) in [
        ("x-acs-date", "IllegalTimestamp"),
        ("x-acs-signature-nonce", "MissingParameter"),
        ("x-acs-action", "IncompleteSignature"),
        ("none", "ok"),
    ] {
        let mut headers: Vec<(String, String)> = owned(&[
            ("host", "h"),
            ("x-acs-action", "ListKeys"),
            ("x-acs-date", &date),
            ("x-acs-signature-nonce", "n-2"),
        ])
        .into_iter()
        .filter(|(k, _)| k != drop)
        .collect();
        let target = acs3_sign("GET", &[], &mut headers, b"", "testsecret");
        let req = HttpRequest {
            method: "GET",
            target: &target,
            headers: &headers,
            body: b"",
        };
        assert_eq!(code(verifier().verify(&kms, &req)), want, "without {drop}");
    }
}

/// A v1 request signed here, its parameters in the query string.
fn v1_request(extra: &[(&str, &str)], nonce: &str, time: i64) -> String {
    let mut params = owned(&[
        ("Action", "DescribeRegions"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", &localkms::format_timestamp(time)),
    ]);
    params.extend(owned(extra));
    let sig = v1_signature("GET", &params, "testsecret");
    params.push(("Signature".into(), sig));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    format!("/?{}", query.join("&"))
}

fn get(target: &str) -> HttpRequest<'_> {
    HttpRequest {
        method: "GET",
        target,
        headers: &[],
        body: b"",
    }
}

/// An ACS3 request signed here, with these headers besides the body hash.
fn acs3_request(headers: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut headers = owned(headers);
    let target = acs3_sign("GET", &[], &mut headers, b"", "testsecret");
    (target, headers)
}

/// Issue 13 (7.3): a nonce is at most 128 characters, and a longer one is
/// refused naming where it came from, before anything is remembered. A
/// 4 MiB nonce used to be accepted and kept for the window.
#[test]
fn a_long_nonce_is_refused_naming_its_parameter() {
    let t = 1_800_000_000;
    let (kms, _) = kms_at(t);
    let v = verifier();
    let longest = "n".repeat(MAX_NONCE_CHARS);
    assert_eq!(
        code(v.verify(&kms, &get(&v1_request(&[], &longest, t)))),
        "ok"
    );
    for nonce in ["n".repeat(MAX_NONCE_CHARS + 1), "n".repeat(4 << 20)] {
        let target = v1_request(&[], &nonce, t);
        let e = v.verify(&kms, &get(&target)).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        let message = e.to_string();
        assert!(message.contains("SignatureNonce"), "{message}");
        assert!(message.len() < 200, "the message repeats the nonce");
    }
    // Multi-byte characters count as characters.
    let wide = "é".repeat(MAX_NONCE_CHARS);
    assert_eq!(code(v.verify(&kms, &get(&v1_request(&[], &wide, t)))), "ok");
    assert_eq!(v.remembered_nonces(), 2);

    let date = localkms::format_timestamp(t);
    let long = "a".repeat(MAX_NONCE_CHARS + 1);
    let (target, headers) = acs3_request(&[
        ("host", "h"),
        ("x-acs-action", "ListKeys"),
        ("x-acs-date", &date),
        ("x-acs-signature-nonce", &long),
    ]);
    let req = HttpRequest {
        method: "GET",
        target: &target,
        headers: &headers,
        body: b"",
    };
    let e = v.verify(&kms, &req).unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    assert!(e.to_string().contains("x-acs-signature-nonce"), "{e}");
    assert_eq!(v.remembered_nonces(), 2);
}

/// Issue 13 (7.3): under a steady flood of valid requests, the nonces
/// remembered are those of the window and no more; each request forgets
/// the nonces that expired, in order of expiry.
#[test]
fn a_flood_of_valid_requests_keeps_the_nonces_bounded_by_the_window() {
    let start = 1_800_000_000;
    let (kms, clock) = kms_at(start);
    let v = verifier();
    let n = 3 * SIGNATURE_WINDOW_SECONDS;
    let bound = usize::try_from(SIGNATURE_WINDOW_SECONDS + 1).expect("small");
    let mut most = 0;
    for i in 0..n {
        // One request a second, each signed at the clock's time.
        let now = start + i;
        clock.set(now);
        let target = v1_request(&[], &format!("flood-{i}"), now);
        assert_eq!(code(v.verify(&kms, &get(&target))), "ok", "{i}");
        most = most.max(v.remembered_nonces());
        assert!(
            v.remembered_nonces() <= bound,
            "{i}: {}",
            v.remembered_nonces()
        );
    }
    // Full, but never more than the window's requests.
    assert_eq!(most, bound);
    // Idle for a window: the next request forgets them all.
    let later = start + n + 2 * SIGNATURE_WINDOW_SECONDS;
    clock.set(later);
    let target = v1_request(&[], "after", later);
    assert_eq!(code(v.verify(&kms, &get(&target))), "ok");
    assert_eq!(v.remembered_nonces(), 1);
}

/// Nonces are forgotten by their own expiry, not by arrival: a request
/// dated ahead of the clock is remembered longer than one dated behind it
/// that arrived after it.
#[test]
fn nonces_expire_in_time_order_not_arrival_order() {
    let t = 1_800_000_000;
    let (kms, clock) = kms_at(t);
    let v = verifier();
    let ahead = v1_request(&[], "ahead", t + SIGNATURE_WINDOW_SECONDS);
    let behind = v1_request(&[], "behind", t - SIGNATURE_WINDOW_SECONDS);
    assert_eq!(code(v.verify(&kms, &get(&ahead))), "ok");
    assert_eq!(code(v.verify(&kms, &get(&behind))), "ok");
    assert_eq!(v.remembered_nonces(), 2);
    clock.advance(1);
    let other = v1_request(&[], "other", t + 1);
    assert_eq!(code(v.verify(&kms, &get(&other))), "ok");
    // `behind` expired and is forgotten (its timestamp now refuses it);
    // `ahead` is still remembered and refused as a replay.
    assert_eq!(v.remembered_nonces(), 2);
    assert_eq!(code(v.verify(&kms, &get(&behind))), "IllegalTimestamp");
    assert_eq!(code(v.verify(&kms, &get(&ahead))), "SignatureNonceUsed");
    clock.advance(2 * SIGNATURE_WINDOW_SECONDS);
    assert_eq!(code(v.verify(&kms, &get(&ahead))), "IllegalTimestamp");
}

/// Issue 13 (7.3): `x-acs-action`, `x-acs-date` and `x-acs-signature-nonce`
/// given twice are refused even when both copies are signed: which one was
/// meant is ambiguous. So are v1's signature parameters.
#[test]
fn duplicated_signature_headers_and_parameters_are_refused() {
    let t = 1_800_000_000;
    let date = localkms::format_timestamp(t);
    let base = [
        ("host", "h"),
        ("x-acs-action", "ListKeys"),
        ("x-acs-date", date.as_str()),
        ("x-acs-signature-nonce", "n-dup"),
    ];
    for (name, second) in [
        ("x-acs-action", "DescribeRegions"),
        ("x-acs-date", date.as_str()),
        ("x-acs-signature-nonce", "n-other"),
        ("x-acs-signature-nonce", "n-dup"),
    ] {
        let mut headers = base.to_vec();
        headers.push((name, second));
        let (target, headers) = acs3_request(&headers);
        let req = HttpRequest {
            method: "GET",
            target: &target,
            headers: &headers,
            body: b"",
        };
        let (kms, _) = kms_at(t);
        let v = verifier();
        let e = v.verify(&kms, &req).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter", "{name} twice");
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(v.remembered_nonces(), 0);
    }
    // The same request with each header once verifies.
    let (target, headers) = acs3_request(&base);
    let req = HttpRequest {
        method: "GET",
        target: &target,
        headers: &headers,
        body: b"",
    };
    let (kms, _) = kms_at(t);
    assert_eq!(code(verifier().verify(&kms, &req)), "ok");

    // v1: a second SignatureNonce or Timestamp, signed along with the rest.
    for (name, value) in [
        ("SignatureNonce", "n-second"),
        ("Timestamp", date.as_str()),
        ("AccessKeyId", "testid"),
    ] {
        let target = v1_request(&[(name, value)], "n-first", t);
        let (kms, _) = kms_at(t);
        let v = verifier();
        let e = v.verify(&kms, &get(&target)).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter", "{name} twice");
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(v.remembered_nonces(), 0);
    }
}
