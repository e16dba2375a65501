//! `localkms serve`: the wire layer over HTTP, for the official SDKs and any
//! HTTP client (SPEC section 10).
//!
//! It listens on a loopback address, accepts GET and POST (parameters from
//! the query string, a form body, and for ACS3 the `x-acs-action` header),
//! verifies each request's signature (v1 HMAC-SHA1 or ACS3-HMAC-SHA256) and
//! answers through `localkms::wire::handle`. The first line on stdout is
//! `listening on http://HOST:PORT`. Each request is logged through `tracing`
//! (method, action, status, error code, duration; never a parameter's value).
//! SIGINT or SIGTERM stops it cleanly: requests in progress finish, the
//! store is flushed, and the exit status is 0.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, ArgMatches, Command};
use localkms::wire::{self, HttpRequest, Verifier};
use localkms::{Error, Fault, JsonLinesAudit, Kms};

use crate::{Globals, failure, init_logging, usage_error};

/// The largest request body read.
const MAX_BODY_BYTES: u64 = 1 << 20;

/// Threads answering requests.
const WORKERS: usize = 4;

/// The log target of request events.
const TARGET: &str = "localkms::serve";

pub(crate) fn command() -> Command {
    Command::new("serve")
        .about("Serve the API over HTTP for the official SDKs (first line: listening on http://HOST:PORT)")
        .after_help(
            "Example:\n  \
             ACCESS_KEY_SECRET=testsecret localkms --data-dir ./kms serve --listen 127.0.0.1:8080 \\\n    \
             --access-key-id testid --access-key-secret-env ACCESS_KEY_SECRET\n\
             SIGINT or SIGTERM stops it cleanly.",
        )
        .arg(
            Arg::new("listen")
                .long("listen")
                .value_name("ADDR")
                .required(true)
                .help("The loopback address and port to listen on; port 0 picks a free one"),
        )
        .arg(
            Arg::new("access-key-id")
                .long("access-key-id")
                .value_name("ID")
                .required(true)
                .help("The AccessKeyId requests must be signed with"),
        )
        .arg(
            Arg::new("access-key-secret-env")
                .long("access-key-secret-env")
                .value_name("VAR")
                .required(true)
                .help("The environment variable holding the AccessKeySecret (kept out of argv)"),
        )
        .arg(
            Arg::new("fixtures")
                .long("fixtures")
                .value_name("FILE")
                .help("Load this JSON fixture file (docs/FIXTURES.md) at start"),
        )
        .arg(
            Arg::new("fault")
                .long("fault")
                .value_name("ACTION:N:FAULT")
                .action(ArgAction::Append)
                .help(
                    "Make the next N calls of ACTION (* for all) fail, or with a decimal N such as \
                     0.25 fail with that probability (seeded); FAULT is Throttling, \
                     ServiceUnavailable or InternalFailure. May be repeated",
                ),
        )
        .arg(
            Arg::new("cache-ttl")
                .long("cache-ttl")
                .value_name("DURATION")
                .help(
                    "How long a key's metadata may be served from this process's cache before \
                     it is read again from the store, e.g. 0 (always read), 500ms, 1s, 2m; \
                     for several processes on one store [default: the library's]",
                ),
        )
        .arg(
            Arg::new("audit-log")
                .long("audit-log")
                .value_name("FILE")
                .help("Append one JSON line per operation to FILE"),
        )
}

/// The `serve` options, checked.
struct Options {
    listen: SocketAddr,
    access_key_id: String,
    secret_env: String,
    fixtures: Option<String>,
    faults: Vec<String>,
    audit_log: Option<String>,
    cache_ttl: Option<Duration>,
}

fn options(m: &ArgMatches) -> Result<Options, String> {
    let get = |id: &str| m.try_get_one::<String>(id).ok().flatten().cloned();
    let need = |id: &str| get(id).ok_or_else(|| format!("--{id} is required"));
    let listen_text = need("listen")?;
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|e| format!("--listen {listen_text:?}: {e} (expected IP:PORT)"))?;
    if !listen.ip().is_loopback() {
        return Err(format!(
            "--listen {listen}: must be a loopback address (127.0.0.1 or [::1]); \
             the server speaks plain HTTP"
        ));
    }
    Ok(Options {
        listen,
        access_key_id: need("access-key-id")?,
        secret_env: need("access-key-secret-env")?,
        fixtures: get("fixtures"),
        faults: m
            .try_get_many::<String>("fault")
            .ok()
            .flatten()
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        audit_log: get("audit-log"),
        cache_ttl: get("cache-ttl")
            .map(|text| parse_duration(&text).map_err(|e| format!("--cache-ttl {text:?}: {e}")))
            .transpose()?,
    })
}

/// Parses a duration: `0`, or a whole number with a unit `ms`, `s` or `m`
/// (`500ms`, `1s`, `2m`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected 0 or a whole number with a unit ms, s or m, such as 500ms";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| EXPECTED.to_owned())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(EXPECTED.into());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{digits} is too large"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        _ => return Err(EXPECTED.into()),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text} is too large"))
}

/// Parses one `--fault ACTION:N:FAULT` rule and sets it.
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

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn run(globals: &Globals, m: &ArgMatches) -> ExitCode {
    let opts = match options(m) {
        Ok(o) => o,
        Err(msg) => return usage_error(&msg),
    };
    if let Err(msg) = init_logging(globals.log.as_deref(), "info") {
        return usage_error(&msg);
    }
    let secret = match std::env::var(&opts.secret_env) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            return usage_error(&format!(
                "--access-key-secret-env {}: the variable is not set or empty",
                opts.secret_env
            ));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return usage_error(&format!(
                "--access-key-secret-env {}: the value is not UTF-8",
                opts.secret_env
            ));
        }
    };
    let verifier = Verifier::new(opts.access_key_id, secret);
    let kms = match globals.open_or_exit(|b| match opts.cache_ttl {
        Some(ttl) => b.cache_ttl(ttl),
        None => b,
    }) {
        Ok(k) => k,
        Err(status) => return status,
    };
    for spec in &opts.faults {
        if let Err(msg) = add_fault(&kms, spec) {
            return usage_error(&msg);
        }
    }
    if let Some(path) = &opts.fixtures {
        match kms.load_fixtures_file(path) {
            Ok(ids) => {
                tracing::info!(target: TARGET, keys = ids.len(), file = %path, "loaded fixtures")
            }
            Err(e) => return failure(&format!("--fixtures {path}: {e}")),
        }
    }
    if let Some(path) = &opts.audit_log {
        match JsonLinesAudit::file(path) {
            Ok(sink) => kms.set_audit_sink(Arc::new(sink)),
            Err(e) => return failure(&format!("--audit-log {path}: {e}")),
        }
    }
    let server = match tiny_http::Server::http(opts.listen) {
        Ok(s) => Arc::new(s),
        Err(e) => return failure(&format!("cannot listen on {}: {e}", opts.listen)),
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let (stopper, flag) = (Arc::clone(&server), Arc::clone(&stopping));
    if let Err(e) = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        for _ in 0..WORKERS {
            stopper.unblock();
        }
    }) {
        return failure(&format!("cannot install the signal handler: {e}"));
    }
    let addr = match server.server_addr().to_ip() {
        Some(addr) => addr,
        None => return failure("the server has no IP address"),
    };
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(target: TARGET, %addr, "listening");

    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    match server.recv() {
                        Ok(request) => answer(&kms, &verifier, request),
                        Err(_) if stopping.load(Ordering::SeqCst) => break,
                        Err(e) => tracing::warn!(target: TARGET, error = %e, "accept failed"),
                    }
                }
            });
        }
    });

    match kms.flush() {
        Ok(()) => {
            tracing::info!(target: TARGET, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => failure(&format!("flush failed: {e}")),
    }
}

/// Answers one request and logs it.
fn answer(kms: &Kms, verifier: &Verifier, mut request: tiny_http::Request) {
    let started = Instant::now();
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
        Err(e) => {
            tracing::debug!(target: TARGET, error = %e, "the client went away");
            return;
        }
        Ok(_) if body.len() as u64 > MAX_BODY_BYTES => wire::error(
            &http.params_unverified(),
            &Error::InvalidParameter {
                param: "Body",
                reason: "must be at most 1 MiB".into(),
            },
        ),
        Ok(_) => wire::handle(kms, verifier, &http),
    };
    tracing::info!(
        target: TARGET,
        method = %loggable(&method, ["GET", "POST"]),
        action = %loggable(&action_of(&http), wire::actions().map(|(name, _)| name)),
        status = response.status,
        code = %error_code(&response),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    let status = response.status;
    let mut reply = tiny_http::Response::from_string(response.body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], response.content_type) {
        reply.add_header(h);
    }
    let _ = request.respond(reply); // the client may have gone away
}

/// The request's action as sent: the `x-acs-action` header or the `Action`
/// parameter.
fn action_of(http: &HttpRequest<'_>) -> String {
    http.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-acs-action"))
        .map(|(_, v)| v.clone())
        .or_else(|| {
            http.params_unverified()
                .into_iter()
                .find(|(k, _)| k == "Action")
                .map(|(_, v)| v)
        })
        .unwrap_or_default()
}

/// `value` when it is one of `known`, else `-`: what a client sends is not
/// written to the log as it is.
fn loggable<'a>(value: &str, known: impl IntoIterator<Item = &'a str>) -> &'a str {
    known.into_iter().find(|k| *k == value).unwrap_or("-")
}

/// The `Code` of an error response, `-` for a success.
fn error_code(r: &wire::Response) -> String {
    if r.status == 200 {
        return "-".into();
    }
    let code = if r.content_type.contains("json") {
        serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["Code"].as_str().map(str::to_owned))
    } else {
        r.body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_owned())
    };
    // The code comes from the library, but stays a loggable name.
    if let Some(code) = code.filter(|c| {
        c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    }) {
        return code;
    }
    "-".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rules_are_checked() {
        let kms = Kms::in_memory().expect("kms");
        add_fault(&kms, "Encrypt:2:Throttling").expect("count");
        add_fault(&kms, "*:0.5:ServiceUnavailable").expect("probability");
        for bad in [
            "Encrypt",
            "Encrypt:2",
            "Encrypt:x:Throttling",
            "Encrypt:2:Nope",
            "Encrypt:1.5:Throttling",
            "a:1:Throttling:extra",
        ] {
            let e = add_fault(&kms, bad).unwrap_err();
            assert!(e.starts_with(&format!("--fault {bad}:")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn cache_ttl_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in [
            "",
            "1",
            "s",
            "1.5s",
            "-1s",
            "1h",
            "1 s",
            "99999999999999999999ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("18446744073709551615m").is_err());
    }

    #[test]
    fn only_known_names_are_logged() {
        assert_eq!(loggable("POST", ["GET", "POST"]), "POST");
        assert_eq!(loggable("PO\nST", ["GET", "POST"]), "-");
        let actions = || wire::actions().map(|(n, _)| n);
        assert_eq!(loggable("Encrypt", actions()), "Encrypt");
        assert_eq!(loggable("Encrypt\u{1b}[31m", actions()), "-");
    }
}
