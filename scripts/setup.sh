#!/usr/bin/env bash
# Sets up everything `pipeline` needs on a fresh Debian 12 machine, then builds the release
# binary. Idempotent: a second run checks what is there and takes seconds.
#
#   scripts/setup.sh            CPU libtorch 2.13.0 + Debian packages + release build
#   scripts/setup.sh --cuda     the CUDA build of the same libtorch (NVIDIA GPU machines)
#   scripts/setup.sh --no-build everything but the release build (the test script uses this)
#   scripts/setup.sh --test     also what only the tests need (a headless browser, Python venv,
#                               Slurm and munge for a one-node test cluster)
#
# libtorch comes from the PyPI wheel of torch 2.13.0 (the PyTorch download site is not
# reachable everywhere); the wheels are cached in ${PIPELINE_WHEEL_CACHE:-~/.cache/pipeline/wheels}
# and only the libraries tch needs are unpacked into .libtorch/ at the repository root.
set -euo pipefail

TORCH_VERSION=2.13.0
CUDA_RUNTIME_SPEC='nvidia-cuda-runtime==13.0.96.*'
CUPTI_SPEC='nvidia-cuda-cupti==13.0.85.*'
APT_PACKAGES=(dataset-fashion-mnist fonts-dejavu-core python3 python3-pip g++ pkg-config)
# Only for the tests: the report render test loads the HTML report in headless Chromium; the
# interop test makes a Python virtual environment with DuckDB, pyarrow and polars.
TEST_APT_PACKAGES=(chromium python3-venv)
# Only for the Slurm tests (scripts/slurm-local.sh starts a one-node cluster from them). Those
# tests are skipped, loudly, where these cannot be installed, so a failure here is a warning.
SLURM_APT_PACKAGES=(slurm-wlm munge)
slurm=0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PIPELINE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline/wheels}
libtorch="$root/.libtorch"
variant=cpu
build=1

for arg in "$@"; do
  case "$arg" in
    --cuda) variant=cuda ;;
    --no-build) build=0 ;;
    --test) APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}"); slurm=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (expected --cuda, --no-build, --test)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root to run: $*" >&2; exit 1
  fi
}

install_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "Debian packages present"; return; fi
  # python3 and pip may come from elsewhere (pyenv); only ask apt for them when absent.
  local wanted=()
  for p in "${missing[@]}"; do
    case "$p" in
      python3) command -v python3 >/dev/null 2>&1 || wanted+=("$p") ;;
      python3-pip) python3 -m pip --version >/dev/null 2>&1 || wanted+=("$p") ;;
      g++) command -v g++ >/dev/null 2>&1 || wanted+=("$p") ;;
      pkg-config) command -v pkg-config >/dev/null 2>&1 || wanted+=("$p") ;;
      # Debian's own python3 needs the package to make virtual environments; others have it.
      python3-venv) [ "$(command -v python3)" != /usr/bin/python3 ] || wanted+=("$p") ;;
      *) wanted+=("$p") ;;
    esac
  done
  if [ ${#wanted[@]} -eq 0 ]; then say "Debian packages present"; return; fi
  say "installing Debian packages: ${wanted[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}"
}

pip_download() {
  # A fixed platform and Python tag, so that the same wheel is fetched whatever the local Python.
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --python-version 3.11 --implementation cp \
    -d "$cache" "$@"
}

# Prints the cached wheel matching $1, or nothing (not an error: the cache may be empty).
wheel_path() { ls "$cache"/$1 2>/dev/null | head -n 1 || true; }

setup_cpu_libtorch() {
  if [ -f "$libtorch/.complete" ] && [ "$(cat "$libtorch/.complete")" = "cpu $TORCH_VERSION" ]; then
    say "libtorch $TORCH_VERSION (cpu) present in .libtorch"
    return
  fi
  local torch_whl runtime_whl cupti_whl
  torch_whl=$(wheel_path "torch-$TORCH_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl")
  runtime_whl=$(wheel_path 'nvidia_cuda_runtime-13.0.96-*.whl')
  cupti_whl=$(wheel_path 'nvidia_cuda_cupti-13.0.85-*.whl')
  if [ -z "$torch_whl" ] || [ -z "$runtime_whl" ] || [ -z "$cupti_whl" ]; then
    say "downloading torch $TORCH_VERSION wheel from PyPI (about 530 MB, cached in $cache)"
    pip_download "torch==$TORCH_VERSION" "$CUDA_RUNTIME_SPEC" "$CUPTI_SPEC"
    torch_whl=$(wheel_path "torch-$TORCH_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl")
    runtime_whl=$(wheel_path 'nvidia_cuda_runtime-13.0.96-*.whl')
    cupti_whl=$(wheel_path 'nvidia_cuda_cupti-13.0.85-*.whl')
  fi
  say "unpacking libtorch into .libtorch"
  local staging="$libtorch.partial"
  rm -rf "$staging"
  mkdir -p "$staging/lib"
  python3 - "$torch_whl" "$runtime_whl" "$cupti_whl" "$staging" <<'PY'
import os, shutil, sys, zipfile
torch_whl, runtime_whl, cupti_whl, out = sys.argv[1:]
wanted = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libtorch.so"}
def copy(zf, name, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with zf.open(name) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
with zipfile.ZipFile(torch_whl) as zf:
    for name in zf.namelist():
        if name.endswith("/"):
            continue
        if name.startswith("torch/include/"):
            copy(zf, name, os.path.join(out, name[len("torch/"):]))
        elif name.startswith("torch/lib/") and os.path.basename(name) in wanted:
            copy(zf, name, os.path.join(out, "lib", os.path.basename(name)))
for whl, lib in ((runtime_whl, "libcudart.so.13"), (cupti_whl, "libcupti.so.13")):
    with zipfile.ZipFile(whl) as zf:
        copy(zf, "nvidia/cu13/lib/" + lib, os.path.join(out, "lib", lib))
PY
  echo "$TORCH_VERSION" > "$staging/build-version"
  echo "cpu $TORCH_VERSION" > "$staging/.complete"
  rm -rf "$libtorch"
  mv "$staging" "$libtorch"
  say "libtorch ready ($(du -sh "$libtorch" | cut -f1))"
}

setup_cuda_libtorch() {
  local venv="$root/.venv-torch"
  if [ -f "$libtorch/.complete" ] && [ "$(cat "$libtorch/.complete")" = "cuda $TORCH_VERSION" ]; then
    say "libtorch $TORCH_VERSION (cuda) present"
    return
  fi
  say "installing torch $TORCH_VERSION with its CUDA libraries into .venv-torch (several GB)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --cache-dir "$cache/pip" "torch==$TORCH_VERSION"
  local torch_dir
  torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  # The package directory has the lib/ and include/ layout that torch-sys expects; libtorch_cuda.so
  # finds its CUDA libraries through its own run path into the venv's nvidia packages.
  rm -rf "$libtorch"
  mkdir -p "$libtorch"
  ln -s "$torch_dir/lib" "$libtorch/lib"
  ln -s "$torch_dir/include" "$libtorch/include"
  echo "$TORCH_VERSION" > "$libtorch/build-version"
  echo "cuda $TORCH_VERSION" > "$libtorch/.complete"
}

install_slurm_packages() {
  local missing=()
  for p in "${SLURM_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "Slurm test packages present"; return; fi
  say "installing Debian packages for the Slurm tests: ${missing[*]}"
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
  if as_root "${install[@]}" "${missing[@]}" </dev/null \
    || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null \
      && as_root "${install[@]}" "${missing[@]}" </dev/null; }; then
    return
  fi
  local bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  printf '%s\nsetup: WARNING: could not install %s;\nsetup: the Slurm tests (tests/e2e_slurm.rs) will be SKIPPED\n%s\n' \
    "$bar" "${missing[*]}" "$bar" >&2
}

install_apt_packages
if [ "$slurm" = 1 ]; then install_slurm_packages; fi
if [ "$variant" = cuda ]; then setup_cuda_libtorch; else setup_cpu_libtorch; fi

if [ "$build" = 1 ]; then
  say "building the release binaries (first build takes about 10 minutes on 2 cores)"
  # `pipeline` and the `pipeline-worker` it starts for every stage that needs libtorch.
  (cd "$root" && cargo build --release --locked -p pipeline-cli -p pipeline-stages --bins)
  for binary in pipeline pipeline-worker; do
    [ -x "$root/target/release/$binary" ] || { echo "setup: the build made no $binary" >&2; exit 1; }
  done
  say "done: $root/target/release/pipeline (and pipeline-worker beside it)"
fi
