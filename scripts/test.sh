#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine: sets up what the tests need
# (libtorch 2.13.0 for CPU, the Debian packages including the test-only ones: Chromium for the
# report render test, python3-venv for the interop test, slurm-wlm and munge for the Slurm
# tests; no release build), then `cargo test`.
# Tests build in the dev profile with dependencies optimized (see Cargo.toml).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --no-build --test
if ! why=$("$root/scripts/slurm-local.sh" check 2>&1); then
  bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  printf '%s\ntest: the Slurm tests (tests/e2e_slurm.rs) will be SKIPPED: %s\n%s\n' "$bar" "$why" "$bar" >&2
fi
cd "$root"
cargo test --workspace --locked "$@"
