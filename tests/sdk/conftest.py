"""Fixtures for the SDK compatibility tests: `localkms serve`, started on
port 0 against a temporary store, and one client per SDK mode.

The binary is $LOCALKMS_BIN, or target/release/localkms, or
target/debug/localkms (scripts/sdk-tests.sh builds the release one with
`--features cli,postgres`).

With LOCALKMS_SDK_STORE=postgres every `serve` keeps its store in a
throwaway PostgreSQL server (pgserver.py) with `--cache-ttl 0`, and the
`gateway` fixture is TWO `serve` processes on one schema: the clients made
for it alternate their requests between the two.
"""

import hashlib
import itertools
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile

import pytest

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from alibabacloud_kms20160120 import models as tea_models
from alibabacloud_kms20160120.client import Client as TeaClient
from alibabacloud_tea_openapi.models import Config as TeaConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCESS_KEY_ID = "testid"
ACCESS_KEY_SECRET = "testsecret"
REGION = "cn-hangzhou"
# The environment variable `serve` reads the secret from.
SECRET_ENV = "LOCALKMS_TEST_ACCESS_KEY_SECRET"
# The environment variable `serve` reads the PostgreSQL URL from.
PG_URL_ENV = "LOCALKMS_TEST_PG_URL"
# "postgres": every store in PostgreSQL, two processes behind `gateway`.
STORE = os.environ.get("LOCALKMS_SDK_STORE", "sled")
if STORE not in ("sled", "postgres"):
    raise RuntimeError(f"LOCALKMS_SDK_STORE={STORE!r}: expected sled or postgres")


class PostgresStore:
    """The session's PostgreSQL server and the root key file its stores use."""

    def __init__(self):
        from pgserver import PgServer
        self.server = PgServer()
        self.dir = tempfile.TemporaryDirectory(prefix="localkms-sdk-root-")
        self.root_key = pathlib.Path(self.dir.name) / "root.key"
        fd = os.open(self.root_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())

    def args(self, data_dir):
        """`serve` options for the store standing in for `data_dir`: one
        schema per directory, so a restart finds its store again."""
        schema = "sdk_" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
        return ["--postgres-env", PG_URL_ENV, "--postgres-schema", schema,
                "--root-key-file", str(self.root_key)]

    def close(self):
        self.server.stop()
        self.dir.cleanup()


_POSTGRES = None


def postgres_store():
    global _POSTGRES
    if _POSTGRES is None:
        _POSTGRES = PostgresStore()
    return _POSTGRES


def pytest_sessionfinish(session, exitstatus):
    if _POSTGRES is not None:
        _POSTGRES.close()


def localkms_binary():
    env = os.environ.get("LOCALKMS_BIN")
    if env:
        return pathlib.Path(env)
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "localkms"
        if candidate.exists():
            return candidate
    pytest.fail("no localkms binary: set LOCALKMS_BIN or run scripts/sdk-tests.sh")


class Gateway:
    """A running `localkms serve` process. Its log (stderr) goes to a file,
    so a busy server never blocks on a full pipe."""

    def __init__(self, data_dir, access_key_id=ACCESS_KEY_ID, secret=ACCESS_KEY_SECRET,
                 extra_args=()):
        self.log = tempfile.NamedTemporaryFile(prefix="localkms-serve-", suffix=".log")
        env = {**os.environ, SECRET_ENV: secret}
        if STORE == "postgres":
            pg = postgres_store()
            store_args = pg.args(data_dir)
            extra_args = ["--cache-ttl", "0", *extra_args]
            env[PG_URL_ENV] = pg.server.url
        else:
            store_args = ["--data-dir", str(data_dir)]
        self.proc = subprocess.Popen(
            [
                str(localkms_binary()),
                *store_args,
                "serve",
                "--listen", "127.0.0.1:0",
                "--access-key-id", access_key_id,
                "--access-key-secret-env", SECRET_ENV,
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"unexpected first line {line!r}: {self.log_text()}")
        self.port = int(m.group(1))
        self.endpoint = f"127.0.0.1:{self.port}"

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        """Stops the server with `sig`; returns its exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


class GatewayPair:
    """Two `serve` processes on one PostgreSQL store. `endpoint` alternates
    between them; an SDK client made with either (make_sdk) alternates its
    requests between both."""

    def __init__(self, data_dir):
        self.gateways = [Gateway(data_dir), Gateway(data_dir)]
        self.endpoints = [gw.endpoint for gw in self.gateways]
        self._next = itertools.cycle(self.endpoints)
        for endpoint in self.endpoints:
            PAIRED[endpoint] = self.endpoints

    @property
    def endpoint(self):
        return next(self._next)

    def stop(self, sig=signal.SIGTERM):
        codes = [gw.stop(sig) for gw in self.gateways]
        return max(codes, key=abs)

    def log_text(self):
        return "".join(gw.log_text() for gw in self.gateways)


# endpoint -> the endpoints of its pair, for make_sdk.
PAIRED = {}


@pytest.fixture(scope="session")
def gateway():
    with tempfile.TemporaryDirectory() as data_dir:
        gw = GatewayPair(data_dir) if STORE == "postgres" else Gateway(data_dir)
        yield gw
        assert gw.stop() == 0, "localkms serve must exit cleanly on SIGTERM"
        # Every request was logged, without a parameter's value.
        logs = [g.log_text() for g in getattr(gw, "gateways", [gw])]
        for log in logs:
            assert "localkms::serve: request" in log and "action=Encrypt" in log, log[-2000:]
            assert "testsecret" not in log


class SdkError(Exception):
    """An error answer, as the SDK reported it."""

    def __init__(self, code, status, message=""):
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.status = status
        self.message = message


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class OldSdk:
    """aliyun-python-sdk-core + aliyun-python-sdk-kms, through CommonRequest
    (v1 HMAC-SHA1, every parameter in the query string)."""

    name = "old"

    def __init__(self, endpoint, secret=ACCESS_KEY_SECRET, access_key_id=ACCESS_KEY_ID):
        self.endpoint = endpoint
        self.client = AcsClient(access_key_id, secret, REGION)

    def request(self, action, params, accept_format="JSON"):
        req = CommonRequest()
        req.set_endpoint(self.endpoint)
        req.set_protocol_type("http")
        req.set_version("2016-01-20")
        req.set_action_name(action)
        req.set_method("POST")
        req.set_accept_format(accept_format)
        for k, v in params.items():
            if isinstance(v, dict) or isinstance(v, list):
                v = json.dumps(v)
            req.add_query_param(k, str(v))
        return req

    def do(self, req):
        try:
            return self.client.do_action_with_exception(req)
        except ServerException as e:
            raise SdkError(e.get_error_code(), e.get_http_status(), e.get_error_msg()) from e

    def call(self, action, **params):
        result = json.loads(self.do(self.request(action, params)))
        CALLED.add((self.name, action))
        return result


class TeaSdk:
    """alibabacloud-kms20160120: ACS3-HMAC-SHA256 by default, v1 HMAC-SHA1
    with signature_algorithm="v2"."""

    def __init__(self, endpoint, signature_algorithm=None, secret=ACCESS_KEY_SECRET,
                 access_key_id=ACCESS_KEY_ID):
        config = TeaConfig(
            access_key_id=access_key_id,
            access_key_secret=secret,
            endpoint=endpoint,
            protocol="http",
            region_id=REGION,
        )
        if signature_algorithm:
            config.signature_algorithm = signature_algorithm
        self.name = f"tea-{signature_algorithm or 'acs3'}"
        self.client = TeaClient(config)

    def call(self, action, **params):
        method = getattr(self.client, snake(action))
        request_class = getattr(tea_models, f"{action}Request", None)
        try:
            if request_class is None:
                response = method()
            else:
                response = method(request_class(**{snake(k): v for k, v in params.items()}))
        except Exception as e:  # the SDK's exception types differ by version
            code = getattr(e, "code", None)
            if code is None:
                raise
            status = getattr(e, "status_code", None) or (getattr(e, "data", None) or {}).get("statusCode")
            message = (getattr(e, "data", None) or {}).get("Message") or getattr(e, "message", "")
            raise SdkError(code, status, message) from e
        CALLED.add((self.name, action))
        return response.body.to_map()


SDKS = ["old", "tea-acs3", "tea-v2"]

# (SDK mode, action) of every successful call, for test_zz_coverage.py.
CALLED = set()

# (SDK mode, action) of every documented refusal of an action that cannot
# succeed here (RotateSecret on a Generic secret), for test_zz_coverage.py.
REFUSED = set()


class Alternating:
    """One SDK mode's clients for each endpoint of a pair: each call goes to
    the next one in turn."""

    def __init__(self, clients):
        self.clients = clients
        self._next = itertools.cycle(clients)
        self.name = clients[0].name

    def call(self, action, **params):
        return next(self._next).call(action, **params)

    def request(self, action, params, **kw):
        return next(self._next).request(action, params, **kw)

    def do(self, req):
        return self.clients[0].do(req)  # the request names its endpoint


def make_sdk(kind, endpoint, **kw):
    pair = PAIRED.get(endpoint)
    if pair is not None:
        start = pair.index(endpoint)
        return Alternating([make_one_sdk(kind, e, **kw) for e in pair[start:] + pair[:start]])
    return make_one_sdk(kind, endpoint, **kw)


def make_one_sdk(kind, endpoint, **kw):
    if kind == "old":
        return OldSdk(endpoint, **kw)
    if kind == "tea-acs3":
        return TeaSdk(endpoint, **kw)
    if kind == "tea-v2":
        return TeaSdk(endpoint, signature_algorithm="v2", **kw)
    raise ValueError(kind)


@pytest.fixture(params=SDKS)
def sdk(request, gateway):
    return make_sdk(request.param, gateway.endpoint)
