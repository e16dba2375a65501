//! An HTTP gateway in front of `localkms::wire`: it lets the official SDKs
//! and any HTTP client use a local store.
//!
//! ```text
//! cargo run --release --example gateway -- --listen 127.0.0.1:0 \
//!     --data-dir ./kms-data --access-key-id testid --access-key-secret testsecret
//! ```
//!
//! It listens on loopback only, accepts GET and POST (parameters from the
//! query string, a form body, and for ACS3 the `x-acs-action` header),
//! verifies each request's signature (v1 HMAC-SHA1 or ACS3-HMAC-SHA256) and
//! answers through `localkms::wire::dispatch`. The first line on stdout is
//! `listening on http://ADDR`. SIGINT or SIGTERM stops it cleanly.
//!
//! For testing applications (see `docs/FIXTURES.md` and the README's
//! testing section): `--fault ACTION:N:FAULT` makes the next N calls of
//! ACTION (`*` for all) fail, or with a decimal N such as `0.25` fail with
//! that probability (seeded, so runs repeat); FAULT is `Throttling` (429),
//! `ServiceUnavailable` (503) or `InternalFailure` (500). It may be given
//! more than once. `--audit-log FILE` appends one JSON line per operation.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use localkms::wire::{self, HttpRequest, Verifier};
use localkms::{Error, Fault, JsonLinesAudit, Kms};

/// The largest request body read.
const MAX_BODY_BYTES: u64 = 1 << 20;

const USAGE: &str = "usage: gateway --listen 127.0.0.1:PORT --data-dir DIR \
                     --access-key-id ID --access-key-secret SECRET \
                     [--fault ACTION:N:FAULT]... [--audit-log FILE]";

struct Args {
    listen: SocketAddr,
    data_dir: String,
    access_key_id: String,
    access_key_secret: String,
    faults: Vec<String>,
    audit_log: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut data_dir, mut id, mut secret) = (None, None, None, None);
    let (mut faults, mut audit_log) = (Vec::new(), None);
    while let Some(flag) = args.next() {
        if flag == "--fault" {
            faults.push(args.next().ok_or("--fault needs a value")?);
            continue;
        }
        let slot = match flag.as_str() {
            "--audit-log" => &mut audit_log,
            "--listen" => &mut listen,
            "--data-dir" => &mut data_dir,
            "--access-key-id" => &mut id,
            "--access-key-secret" => &mut secret,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        };
        *slot = Some(args.next().ok_or_else(|| format!("{flag} needs a value"))?);
    }
    let need =
        |v: Option<String>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
    let listen: SocketAddr = need(listen, "--listen")?
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    if !listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".into());
    }
    Ok(Args {
        listen,
        data_dir: need(data_dir, "--data-dir")?,
        access_key_id: need(id, "--access-key-id")?,
        access_key_secret: need(secret, "--access-key-secret")?,
        faults,
        audit_log,
    })
}

/// Sets one `--fault ACTION:N:FAULT` rule.
fn add_fault(kms: &Kms, spec: &str) -> Result<(), String> {
    let bad = |e: &dyn std::fmt::Display| format!("--fault {spec}: {e}");
    let mut parts = spec.split(':');
    let (Some(action), Some(n), Some(fault), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(&"expected ACTION:N:FAULT"));
    };
    let fault: Fault = fault.parse().map_err(|e| bad(&e))?;
    let set = if n.contains('.') {
        let p: f64 = n.parse().map_err(|e| bad(&e))?;
        kms.faults().fail_with_probability(action, p, fault, 1)
    } else {
        let times: u64 = n.parse().map_err(|e| bad(&e))?;
        kms.faults().fail_next(action, times, fault)
    };
    set.map_err(|e| bad(&e))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let kms = match Kms::open(&args.data_dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("cannot open {}: {e}", args.data_dir);
            return ExitCode::FAILURE;
        }
    };
    for spec in &args.faults {
        if let Err(msg) = add_fault(&kms, spec) {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.audit_log {
        match JsonLinesAudit::file(path) {
            Ok(sink) => kms.set_audit_sink(Arc::new(sink)),
            Err(e) => {
                eprintln!("cannot open --audit-log {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let verifier = Verifier::new(args.access_key_id, args.access_key_secret);
    let server = match tiny_http::Server::http(args.listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let stopper = Arc::clone(&server);
    if let Err(e) = ctrlc::set_handler(move || stopper.unblock()) {
        eprintln!("cannot install the signal handler: {e}");
        return ExitCode::FAILURE;
    }
    match server.server_addr().to_ip() {
        Some(addr) => println!("listening on http://{addr}"),
        None => println!("listening on {}", server.server_addr()),
    }
    let _ = std::io::stdout().flush();

    for request in server.incoming_requests() {
        serve(&kms, &verifier, request);
    }

    let code = match kms.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flush failed: {e}");
            ExitCode::FAILURE
        }
    };
    eprintln!("stopped");
    code
}

fn serve(kms: &Kms, verifier: &Verifier, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_owned();
    let target = request.url().to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_owned()))
        .collect();
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body);
    let http = HttpRequest {
        method: &method,
        target: &target,
        headers: &headers,
        body: &body,
    };
    let response = match read {
        Err(_) => return, // the client went away
        Ok(_) if body.len() as u64 > MAX_BODY_BYTES => wire::error(
            &http.params_unverified(),
            &Error::InvalidParameter {
                param: "Body",
                reason: "must be at most 1 MiB".into(),
            },
        ),
        Ok(_) => wire::handle(kms, verifier, &http),
    };
    let mut reply =
        tiny_http::Response::from_string(response.body).with_status_code(response.status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], response.content_type) {
        reply.add_header(h);
    }
    let _ = request.respond(reply); // the client may have gone away
}
