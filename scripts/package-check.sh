#!/usr/bin/env bash
# Checks the crate as it would be published: what the package holds (no CI
# scripts, fuzz crate, SDK suite or virtualenvs), that `cargo install`
# installs a working `localkms`, and `cargo publish --dry-run` (which builds
# the packaged crate; it needs the crates.io index).
set -euo pipefail
cd "$(dirname "$0")/.."

list=$(cargo package --list --allow-dirty)
for must in Cargo.toml src/lib.rs src/bin/localkms/main.rs README.md CHANGELOG.md \
            LICENSE-MIT LICENSE-APACHE docs/FORMAT.md docs/FIXTURES.md; do
  if ! grep -qx "$must" <<<"$list"; then
    echo "package-check: $must is missing from the package" >&2
    exit 1
  fi
done
if grep -E '^(\.ci/|scripts/|fuzz/|tests/sdk/|target/|\.git)' <<<"$list"; then
  echo "package-check: the files above must not be published" >&2
  exit 1
fi
echo "package-check: $(wc -l <<<"$list") files, none from CI, scripts, fuzz/ or tests/sdk/"

root=target/install-test
rm -rf "$root"
cargo install --path . --features cli --root "$root" --debug --locked --offline --quiet
"$root/bin/localkms" --help >/dev/null
"$root/bin/localkms" serve --help | grep -q -- '--access-key-secret-env'
echo "package-check: cargo install --features cli installs a working localkms"

cargo publish --dry-run --allow-dirty
