//! A throwaway PostgreSQL server for tests and benches: `initdb` into a
//! temporary directory, `pg_ctl start` on a free port on 127.0.0.1, stopped
//! and removed on drop (and by a watchdog if the process exits without
//! dropping it, as a `static` server does).
//!
//! The server binaries are looked up under `/usr/lib/postgresql/*/bin`, then
//! on `PATH`. Without them [`PgServer::start`] prints a loud SKIPPED line and
//! returns `None`, except under `CI=true`, where it panics. As root (CI runs
//! as root), the server runs as the `postgres` user through `runuser`, since
//! `initdb` refuses root.
//!
//! Login is by password (SCRAM) over TCP, so tests can check that no error
//! message shows one.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The superuser's password.
pub const PASSWORD: &str = "pg-test-Secr3t";

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `Some((uid, gid))` of `postgres` when this process is root.
    run_as: Option<(u32, u32)>,
    pub port: u16,
    /// With `ssl=on`: the CA that signed the server's certificate.
    pub ca: Option<PathBuf>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if any.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    })
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "running as root needs a `postgres` user (the postgresql package creates it)"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

impl PgServer {
    /// A server without TLS.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// A server with `ssl=on` and a certificate for `localhost` and
    /// `127.0.0.1` signed by a fresh CA ([`PgServer::ca`]).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        let Some(bin) = find_bin() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or PATH), and CI=true: install the postgresql package"
            );
            eprintln!(
                "\n==================================================================\n\
                 SKIPPED: PostgreSQL server binaries not found\n\
                 (install the postgresql package; under CI=true this fails)\n\
                 =================================================================="
            );
            return None;
        };
        let root = Command::new("id").arg("-u").output().expect("id -u").stdout == b"0\n";
        let run_as = root.then(|| (id_of("-u"), id_of("-g")));
        let dir = tempfile::Builder::new()
            .prefix("localkms-pg-")
            .tempdir()
            .expect("tempdir");
        let mut server = Self {
            dir,
            bin,
            run_as,
            port: 0,
            ca: None,
        };
        std::fs::create_dir(server.sock()).expect("socket dir");
        std::fs::write(server.dir.path().join("pwfile"), PASSWORD).expect("pwfile");
        if tls {
            server.make_certificates();
        }
        server.chown_all();
        server.run(
            "initdb",
            &[
                "-D",
                server.data().to_str().expect("utf-8 path"),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                server
                    .dir
                    .path()
                    .join("pwfile")
                    .to_str()
                    .expect("utf-8 path"),
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        if tls {
            let conf = server.data().join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
            let certs = server.dir.path().join("certs");
            text.push_str(&format!(
                "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                certs.join("server.crt").display(),
                certs.join("server.key").display()
            ));
            std::fs::write(&conf, text).expect("write postgresql.conf");
        }
        server.watchdog();
        // A free port can be taken between the probe and the bind: try again.
        for attempt in 0.. {
            server.port = free_port();
            if server.try_start() {
                return Some(server);
            }
            assert!(attempt < 3, "PostgreSQL failed to start:\n{}", server.log());
        }
        unreachable!()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A command of the server's `bin`, as `postgres` when we are root.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chown_all(&self) {
        let Some((uid, gid)) = self.run_as else {
            return;
        };
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
            if p.is_dir() {
                for e in std::fs::read_dir(p).expect("read dir") {
                    walk(&e.expect("entry").path(), uid, gid);
                }
            }
        }
        walk(self.dir.path(), uid, gid);
    }

    fn try_start(&self) -> bool {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.sock().display()
        );
        self.command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &opts])
            .stdin(Stdio::null())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Stops the server (fast shutdown: sessions are disconnected).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-w",
                "-m",
                "fast",
                "-D",
                self.data().to_str().expect("utf-8"),
            ],
        );
    }

    /// Starts the stopped server again, on the same port.
    pub fn start_again(&self) {
        assert!(
            self.try_start(),
            "PostgreSQL failed to restart:\n{}",
            self.log()
        );
    }

    /// Stops the server and removes its files once this process is gone,
    /// whether or not `Drop` ran.
    // The watchdog outlives this process on purpose; init reaps it.
    #[allow(clippy::zombie_processes)]
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.run_as {
            Some(_) => format!("runuser -u postgres -- {}", pg_ctl.display()),
            None => pg_ctl.display().to_string(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} stop -m immediate -D '{data}' >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the watchdog");
    }

    /// A connection URL for `user` with `password` to `db`, with extra
    /// query parameters (`sslmode=disable` unless `query` names one).
    pub fn url_as(&self, user: &str, password: &str, db: &str, query: &str) -> String {
        let query = if query.contains("sslmode") {
            query.to_owned()
        } else if query.is_empty() {
            "sslmode=disable".to_owned()
        } else {
            format!("sslmode=disable&{query}")
        };
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{}/{db}?{query}",
            self.port
        )
    }

    /// The superuser's URL, without TLS.
    pub fn url(&self) -> String {
        self.url_as("postgres", PASSWORD, "postgres", "")
    }

    /// A superuser session, for setting up roles and inspecting.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("admin connection")
    }

    /// A CA and a server certificate it signed, for `localhost` and
    /// `127.0.0.1`, with the `openssl` command.
    fn make_certificates(&mut self) {
        let certs = self.dir.path().join("certs");
        std::fs::create_dir(&certs).expect("certs dir");
        make_ca(&certs, "ca");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&certs)
                .stdin(Stdio::null())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            certs.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
        ]);
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            certs.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod server.key");
        self.ca = Some(certs.join("ca.crt"));
    }
}

/// A self-signed CA `name.crt` / `name.key` in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN=localkms test {name}"))
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(format!("{name}.key"))
        .arg("-out")
        .arg(format!("{name}.crt"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req -x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}.crt"))
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdin(Stdio::null())
            .output();
    }
}
