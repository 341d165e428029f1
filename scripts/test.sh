#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine: sets up what the tests need
# (libtorch 2.13.0 for CPU, the Debian packages including the test-only ones: Chromium for the
# report render test, python3-venv for the interop test; no release build), then `cargo test`.
# Tests build in the dev profile with dependencies optimized (see Cargo.toml).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --no-build --test
cd "$root"
cargo test --workspace --locked "$@"
