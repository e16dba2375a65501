#!/usr/bin/env bash
# Compatibility tests with the official Alibaba Cloud Python SDKs: builds the
# `localkms` binary (release, features cli and postgres), sets up a venv under
# target/ with the pinned SDKs from tests/sdk/requirements.txt, and runs
# tests/sdk with pytest against `localkms serve` twice: on a sled store, then
# (LOCALKMS_SDK_STORE=postgres) against two `serve` processes on one
# throwaway PostgreSQL database with `--cache-ttl 0`, requests alternating
# between them. SDK_STORES="sled" (or "postgres") runs one mode only. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/sdk-venv
requirements=tests/sdk/requirements.txt
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi

cargo build --release --features cli,postgres --bin localkms
export LOCALKMS_BIN="$PWD/target/release/localkms"

for store in ${SDK_STORES:-sled postgres}; do
  echo "sdk-tests: store $store"
  status=0
  (cd tests/sdk && LOCALKMS_SDK_STORE=$store \
    "../../$venv/bin/python" -m pytest -q -p no:cacheprovider "$@") || status=$?
  if [ "$status" -eq 5 ]; then
    echo "sdk-tests: pytest collected no tests" >&2
    exit 1
  fi
  if [ "$status" -ne 0 ]; then
    exit "$status"
  fi
done
