#!/usr/bin/env bash
# Fuzzes one of the input parsers with cargo-fuzz (libFuzzer) for a while:
#
#   scripts/fuzz.sh spec  [SECONDS]   pipeline files: parser, validator, overrides (#set lines)
#   scripts/fuzz.sh idx   [SECONDS]   the IDX reader (MNIST), raw and gzip-compressed
#   scripts/fuzz.sh cifar [SECONDS]   the CIFAR-10 batch reader
#
# SECONDS defaults to 600. The corpus starts from real inputs (the shipped pipelines, a few
# MNIST images and labels, generated CIFAR records) and lives in fuzz/corpus/ (not in git).
# An input that crashes, hangs (over 10 s) or takes more than 2 GB is copied to
# fuzz/regressions/<target>/, which the test suite replays on every `cargo test`; the script
# then fails. Needs cargo-fuzz (installed here if missing); the toolchain is stable, with
# RUSTC_BOOTSTRAP for the sanitizer-coverage flags cargo-fuzz passes. Built without
# AddressSanitizer (`-s none`): the code under test is safe Rust, and libtorch is not built
# for ASan; panics, overflows, hangs and memory blow-ups are what is looked for.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${1:?usage: scripts/fuzz.sh spec|idx|cifar [SECONDS]}
seconds=${2:-600}
case "$target" in spec|idx|cifar) ;; *) echo "fuzz: unknown target '$target'" >&2; exit 2 ;; esac

"$root/scripts/setup.sh" --no-build >/dev/null
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1 LIBTORCH="$root/.libtorch" LIBTORCH_CXX11_ABI=1

corpus="$root/fuzz/corpus/$target"
artifacts="$root/fuzz/artifacts/$target"
regressions="$root/fuzz/regressions/$target"
mkdir -p "$corpus" "$artifacts" "$regressions"

seed_corpus() {
  case "$target" in
    spec)
      cp "$root"/pipelines/*.yaml "$corpus/"
      cp "$regressions"/* "$corpus/" 2>/dev/null || true ;;
    idx)
      python3 - "$corpus" <<'PY'
import gzip, os, struct, sys
out = sys.argv[1]
mnist = "/usr/share/datasets/mnist" if os.path.isdir("/usr/share/datasets/mnist") else None
def images(n, rows, cols):
    return struct.pack(">IIII", 0x803, n, rows, cols) + bytes((i * 7) % 256 for i in range(n * rows * cols))
def labels(values):
    return struct.pack(">II", 0x801, len(values)) + bytes(values)
seeds = {
    "images": b"\x00" + images(2, 28, 28),
    "images-gz": b"\x00" + gzip.compress(images(3, 4, 5)),
    "labels": bytes([2 * 10 + 1]) + labels([3, 1, 4, 1, 5, 9, 2, 6]),
    "labels-gz": bytes([2 * 10 + 1]) + gzip.compress(labels([0, 9, 9])),
}
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
PY
      ;;
    cifar)
      python3 - "$corpus" <<'PY'
import os, sys
record = bytes([7]) + bytes(i % 256 for i in range(3072))
open(os.path.join(sys.argv[1], "two-records"), "wb").write(record * 2)
PY
      ;;
  esac
}
seed_corpus

cd "$root/fuzz"
echo "fuzz: building $target"
cargo fuzz build -s none -O "$target"
echo "fuzz: running $target for $seconds s"
status=0
cargo fuzz run -s none -O "$target" "$corpus" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 || status=$?
found=0
for f in "$artifacts"/*; do
  [ -e "$f" ] || continue
  cp "$f" "$regressions/"
  echo "fuzz: saved $(basename "$f") to fuzz/regressions/$target/" >&2
  found=1
done
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
  echo "fuzz: $target found a failing input (see above); it is now a regression test" >&2
  exit 1
fi
echo "fuzz: $target ran $seconds s without a failure"
