#!/usr/bin/env bash
# Runs every test: sets up the Python tools some tests drive (into a venv under
# target/), then `cargo test --all-features`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/pyvenv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import cryptography, gmssl' 2>/dev/null; then
  "$venv/bin/pip" install --quiet -r scripts/requirements.txt
fi
export LOCALKMS_PYTHON="$PWD/$venv/bin/python"

cargo test --all-features "$@"
