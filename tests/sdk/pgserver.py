"""A throwaway PostgreSQL server for the SDK suite's PostgreSQL mode, as
tests/support/pg.rs starts one: `initdb` into a temporary directory,
`pg_ctl start` on a free port on 127.0.0.1, stopped and removed at the end.
As root (CI runs as root) the server runs as the `postgres` user through
`runuser`, since `initdb` refuses root. Login is by password over TCP."""

import glob
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

PASSWORD = "pg-sdk-Secr3t"


def find_bin():
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = pathlib.Path(initdb).parents[1].name
        if version.isdigit():
            found.append((int(version), pathlib.Path(initdb).parent))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    return pathlib.Path(initdb).parent if initdb else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.bin = find_bin()
        if self.bin is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or PATH): "
                "install the postgresql package")
        self.as_postgres = os.geteuid() == 0
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="localkms-sdk-pg-"))
        (self.dir / "sock").mkdir()
        (self.dir / "pwfile").write_text(PASSWORD)
        if self.as_postgres:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--pwfile", str(self.dir / "pwfile"),
                 "-E", "UTF8", "--no-instructions")
        for _ in range(3):
            self.port = free_port()
            opts = f"-p {self.port} -k {self.dir / 'sock'} -c listen_addresses=127.0.0.1"
            if self.run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                        "-l", str(self.dir / "server.log"), "-o", opts, check=False):
                break
        else:
            log = (self.dir / "server.log").read_text(errors="replace")
            self.remove()
            raise RuntimeError(f"PostgreSQL failed to start:\n{log}")
        self.url = (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"
                    "?sslmode=disable")

    @property
    def data(self):
        return self.dir / "data"

    def run(self, tool, *args, check=True):
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {out.stdout}{out.stderr}")
        return out.returncode == 0

    def stop(self):
        self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data), check=False)
        self.remove()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
