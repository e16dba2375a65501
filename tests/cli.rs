//! The `localkms` command line (feature `cli`): `--Name value` pairs into
//! `wire::dispatch`, JSON on stdout, errors as JSON on stderr with a non-zero
//! exit status.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_localkms"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run localkms")
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn actions_succeed_and_print_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["CreateKey", "--Description", "orders"]);
    assert!(out.status.success(), "{out:?}");
    let v = json(&out.stdout);
    let id = v["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_owned();
    assert_eq!(v["KeyMetadata"]["Description"], "orders");
    // The store persists between runs; `--Name=value` works too.
    let out = run(
        dir.path(),
        &["CreateAlias", "--AliasName=alias/app", "--KeyId", &id],
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(dir.path(), &["DescribeKey", "--KeyId", "alias/app"]);
    assert_eq!(json(&out.stdout)["KeyMetadata"]["KeyId"], id.as_str());
    let out = run(dir.path(), &["ListKeys", "--Format", "XML"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.starts_with("<?xml"), "{text}");
}

#[test]
fn errors_go_to_stderr_as_json_with_a_failing_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, code) in [
        (
            &["DescribeKey", "--KeyId", "nope"][..],
            "Forbidden.KeyNotFound",
        ),
        (&["DescribeKey"][..], "MissingParameter"),
        (&["NoSuchAction", "--x", "1"][..], "InvalidAction.NotFound"),
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(json(&out.stderr)["Code"], code, "{args:?}");
    }
    // A usage error: a name without a value.
    let out = run(dir.path(), &["DescribeKey", "--KeyId"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_the_actions() {
    let out = Command::new(env!("CARGO_BIN_EXE_localkms"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for (name, _) in localkms::wire::actions() {
        assert!(text.contains(name), "{name} missing from help");
    }
}

// ---- global options, root keys, `serve` ------------------------------------

/// The command with no preset options.
fn localkms() -> Command {
    Command::new(env!("CARGO_BIN_EXE_localkms"))
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out.stdout)
}

/// A failure reported as one line on stderr, containing `want`, no panic.
fn assert_one_line_error(out: &Output, want: &str) {
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(want), "{want:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn key_id(v: &Value) -> String {
    v["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_owned()
}

/// A root key file (64 hex digits), mode 0600.
fn root_key_file(dir: &Path, byte: u8) -> std::path::PathBuf {
    let path = dir.join(format!("root-{byte}.key"));
    std::fs::write(&path, format!("{byte:02x}").repeat(32)).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

#[test]
fn global_options_before_or_after_the_action() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let store = store.to_str().expect("utf-8");
    let id = key_id(&ok(&localkms()
        .args(["--data-dir", store, "CreateKey", "--Description", "a"])
        .output()
        .expect("run")));
    let data_dir_eq = format!("--data-dir={store}");
    // After the action's name, among its parameters, and in `--x=v` form.
    for args in [
        vec!["DescribeKey", "--data-dir", store, "--KeyId", &id],
        vec!["DescribeKey", "--KeyId", &id, "--data-dir", store],
        vec!["DescribeKey", &data_dir_eq, "--KeyId", &id, "--log", "warn"],
    ] {
        let v = ok(&localkms().args(&args).output().expect("run"));
        assert_eq!(v["KeyMetadata"]["Description"], "a", "{args:?}");
    }
    // Given twice: a usage error.
    let out = localkms()
        .args(["--data-dir", store, "DescribeKey", "--KeyId", &id])
        .args(["--data-dir", store])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_error(&out, "--data-dir is given more than once");
    // Missing altogether.
    let out = localkms().args(["ListKeys"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let want = if cfg!(feature = "postgres") {
        "--data-dir, --postgres or --postgres-env is required"
    } else {
        "--data-dir is required"
    };
    assert_one_line_error(&out, want);
}

#[test]
fn root_key_from_a_file_or_an_environment_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let key = root_key_file(dir.path(), 7);
    let with_file = |args: &[&str]| {
        localkms()
            .arg("--root-key-file")
            .arg(&key)
            .arg("--data-dir")
            .arg(&store)
            .args(args)
            .output()
            .expect("run")
    };
    let id = key_id(&ok(&with_file(&["CreateKey"])));
    let blob = ok(&with_file(&[
        "Encrypt",
        "--KeyId",
        &id,
        "--Plaintext",
        "hi",
    ]))["CiphertextBlob"]
        .as_str()
        .expect("blob")
        .to_owned();
    // The key is not written beside the store.
    assert!(!store.join(localkms::ROOT_KEY_FILE).exists());

    // The same key from an environment variable, the option after the action.
    let out = localkms()
        .env("LOCALKMS_TEST_ROOT", "07".repeat(32))
        .args(["Decrypt", "--CiphertextBlob", &blob, "--data-dir"])
        .arg(&store)
        .args(["--root-key-env", "LOCALKMS_TEST_ROOT"])
        .output()
        .expect("run");
    assert_eq!(ok(&out)["Plaintext"], "hi");

    // Another key, or none at all (no key beside the store): refused.
    let other = root_key_file(dir.path(), 8);
    let out = localkms()
        .arg("--data-dir")
        .arg(&store)
        .arg("--root-key-file")
        .arg(&other)
        .arg("ListKeys")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out, "cannot open the store");
    let out = localkms()
        .arg("--data-dir")
        .arg(&store)
        .arg("ListKeys")
        .output()
        .expect("run");
    assert_one_line_error(&out, "root.key");
    // An unset variable, and both options at once.
    let out = localkms()
        .env_remove("LOCALKMS_TEST_UNSET")
        .arg("--data-dir")
        .arg(&store)
        .args(["--root-key-env", "LOCALKMS_TEST_UNSET", "ListKeys"])
        .output()
        .expect("run");
    assert_one_line_error(&out, "LOCALKMS_TEST_UNSET");
    let out = with_file(&["ListKeys", "--root-key-env", "X"]);
    assert_one_line_error(&out, "cannot be used together");
}

/// A running `localkms serve`, stopped with SIGTERM when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
}

impl Server {
    /// Starts `localkms ARGS` (which include `serve`) with the access key
    /// secret `testsecret` in `LOCALKMS_TEST_SECRET` and these other
    /// variables, and reads its first line.
    fn start(args: &[std::ffi::OsString], vars: &[(&str, String)]) -> Self {
        use std::io::BufRead as _;
        let mut child = localkms()
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env("LOCALKMS_TEST_SECRET", "testsecret")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("first line {line:?}"))
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Self { child, addr }
    }

    /// Sends a v1-signed GET with these parameters; returns the status and
    /// the JSON body.
    fn call(&self, secret: &str, params: &[(&str, &str)]) -> (u16, Value) {
        use std::io::{Read as _, Write as _};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let nonce = format!("{now}-{}", params.len()) + &uuid_like();
        let mut pairs: Vec<(String, String)> = [
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce.as_str()),
            (
                "Timestamp",
                &localkms::format_timestamp(i64::try_from(now).expect("time")),
            ),
        ]
        .iter()
        .chain(params)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let signature = localkms::wire::sign::v1_signature("GET", &pairs, secret);
        pairs.push(("Signature".into(), signature));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(
            stream,
            "GET /?{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            query.join("&"),
            self.addr
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status: u16 = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{response}"));
        let (_, body) = response.split_once("\r\n\r\n").expect("a body");
        (status, json(body.as_bytes()))
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A distinct nonce suffix per call within one process.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// RFC 3986 percent-encoding.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

#[test]
fn serve_prints_its_address_first_and_answers_signed_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let key = root_key_file(dir.path(), 9);
    let fixtures = dir.path().join("fixtures.json");
    std::fs::write(
        &fixtures,
        r#"{"Keys": [{"KeyId": "11111111-1111-4111-8111-111111111111",
                      "Description": "seeded", "Aliases": ["alias/seeded"]}]}"#,
    )
    .expect("write fixtures");
    let audit = dir.path().join("audit.jsonl");
    // Global options after the subcommand; the root key from a file; the
    // access key secret from the environment; fixtures at start.
    let mut args = os(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--access-key-id",
        "testid",
    ]);
    args.extend(os(&["--access-key-secret-env", "LOCALKMS_TEST_SECRET"]));
    args.extend(os(&["--fault", "ListKeys:1:Throttling"]));
    args.push("--fixtures".into());
    args.push(fixtures.into());
    args.push("--audit-log".into());
    args.push(audit.clone().into());
    args.push("--data-dir".into());
    args.push(store.clone().into());
    args.push("--root-key-file".into());
    args.push(key.clone().into());
    let server = Server::start(&args, &[]);

    let (status, v) = server.call(
        "testsecret",
        &[("Action", "DescribeKey"), ("KeyId", "alias/seeded")],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["KeyMetadata"]["Description"], "seeded");
    // The fault rule, then the call succeeds.
    let (status, v) = server.call("testsecret", &[("Action", "ListKeys")]);
    assert_eq!(
        (status, v["Code"].as_str()),
        (429, Some("Rejected.Throttling"))
    );
    let (status, v) = server.call("testsecret", &[("Action", "ListKeys")]);
    assert_eq!((status, v["TotalCount"].as_u64()), (200, Some(1)), "{v}");
    // A request signed with another secret is refused.
    let (status, v) = server.call("other", &[("Action", "ListKeys")]);
    assert_eq!(
        (status, v["Code"].as_str()),
        (400, Some("IncompleteSignature"))
    );
    assert!(server.stop().success());
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert_eq!(log.lines().count(), 3, "{log}");

    // Global options before the subcommand; the store and its key persist.
    let mut args = os(&["--data-dir"]);
    args.push(store.into());
    args.push("--root-key-env".into());
    args.push("LOCALKMS_TEST_ROOT".into());
    args.extend(os(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--access-key-id",
        "testid",
    ]));
    args.extend(os(&["--access-key-secret-env", "LOCALKMS_TEST_SECRET"]));
    let server = Server::start(&args, &[("LOCALKMS_TEST_ROOT", "09".repeat(32))]);
    let (status, v) = server.call(
        "testsecret",
        &[("Action", "DescribeKey"), ("KeyId", "alias/seeded")],
    );
    assert_eq!(status, 200, "{v}");
    assert!(server.stop().success());
}

#[test]
fn bad_options_fail_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let store = store.to_str().expect("utf-8");
    let serve = |extra: &[&str]| {
        let mut args = vec!["--data-dir", store, "serve"];
        args.extend_from_slice(extra);
        localkms()
            .args(args)
            .env("LOCALKMS_TEST_SECRET", "s")
            .env_remove("LOCALKMS_TEST_UNSET")
            .output()
            .expect("run")
    };
    let id = ["--access-key-id", "testid"];
    let env = ["--access-key-secret-env", "LOCALKMS_TEST_SECRET"];
    let listen = ["--listen", "127.0.0.1:0"];
    for (args, want) in [
        (vec!["--bogus"], "--bogus"),
        (vec!["--listen"], "--listen"),
        ([&id[..], &env[..]].concat(), "--listen"),
        ([&listen[..], &env[..]].concat(), "--access-key-id"),
        ([&listen[..], &id[..]].concat(), "--access-key-secret-env"),
        (
            [&["--listen", "nonsense"][..], &id[..], &env[..]].concat(),
            "--listen",
        ),
        (
            [&["--listen", "0.0.0.0:0"][..], &id[..], &env[..]].concat(),
            "loopback",
        ),
        (
            [
                &listen[..],
                &id[..],
                &["--access-key-secret-env", "LOCALKMS_TEST_UNSET"][..],
            ]
            .concat(),
            "LOCALKMS_TEST_UNSET",
        ),
        (
            [
                &listen[..],
                &id[..],
                &env[..],
                &["--fault", "Encrypt:x:Nope"][..],
            ]
            .concat(),
            "--fault",
        ),
        (
            [
                &listen[..],
                &id[..],
                &env[..],
                &["--fixtures", "/nonexistent/f.json"][..],
            ]
            .concat(),
            "--fixtures",
        ),
        (
            [&listen[..], &id[..], &env[..], &["--log", "a=b=c"][..]].concat(),
            "--log",
        ),
        (
            [
                &listen[..],
                &id[..],
                &env[..],
                &["--root-key-file", "/nonexistent/k"][..],
            ]
            .concat(),
            "/nonexistent/k",
        ),
    ] {
        let out = serve(&args);
        assert!(!out.status.success(), "{args:?}");
        assert_one_line_error(&out, want);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = localkms().arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "--bogus");
}
