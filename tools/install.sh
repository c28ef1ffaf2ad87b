#!/usr/bin/env bash
# Install everything ghostnetv2-mm needs into ./.venv, on a fresh machine or an old one.
#
#   bash tools/install.sh            # runtime stack + this package (editable)
#   bash tools/install.sh --tests    # ... plus the test-only dependencies
#   bash tools/install.sh --deploy   # ... plus the deployment extras (requirements/deploy.txt)
#
# The first run takes about 10 minutes, most of it compiling mmcv's C++ ops. The
# compiled wheel is kept in a cache OUTSIDE the repository, keyed by the torch
# version and the CUDA flag, so a fresh clone installs in about a minute once it
# exists; a second run in the same clone only re-checks and takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GHOSTNETV2_MM_VENV:-$ROOT/.venv}"
CACHE="${GHOSTNETV2_MM_CACHE:-$HOME/.cache/ghostnetv2-mm}"
PYTHON="${PYTHON:-python3.11}"
WITH_TESTS=0
WITH_DEPLOY=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    --deploy) WITH_DEPLOY=1 ;;
    *) echo "install.sh: unknown option '$arg' (allowed: --tests, --deploy)" >&2; exit 2 ;;
  esac
done

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[install] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11"

# The stamp records what was installed (a hash of this script, the requirements and
# setup.py, and whether the test extras are in); when it covers this request, only the
# checks run.
STAMP_HASH="$(cat "$ROOT/tools/install.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16)"
STAMP="$VENV/.ghostnetv2-mm-installed"
stamp_covers_request() {
  [[ -f "$STAMP" ]] || return 1
  read -r hash tests deploy < "$STAMP"
  [[ "$hash" == "$STAMP_HASH" ]] && [[ "$tests" == 1 || $WITH_TESTS == 0 ]] \
    && [[ "${deploy:-0}" == 1 || $WITH_DEPLOY == 0 ]]
}
if stamp_covers_request; then
  say "environment in $VENV is up to date; checking it"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
  "${PIP[@]}" install -q --upgrade pip wheel
  # mmcv 2.1.0's setup.py imports pkg_resources (removed in setuptools 81); torch 2.14
  # wants setuptools >= 77: the window between them satisfies both.
  "${PIP[@]}" install -q "setuptools>=77,<81"
  say "installing torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION"
  "${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  # numpy < 2 and a matching OpenCV: the 2023 OpenMMLab releases predate numpy 2.
  # mmseg 1.2.2 imports ftfy and regex without declaring them.
  "${PIP[@]}" install -q "numpy<2" "opencv-python==4.10.0.84" "mmengine==0.10.7" ftfy regex

  # --- mmcv: no wheel exists for torch >= 2.2, so build it from source ----------------
  WITH_CUDA=0
  if command -v nvcc >/dev/null && "$VENV/bin/python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    WITH_CUDA=1
  fi
  WHEEL_DIR="$CACHE/wheels/torch-$TORCH_VERSION-cuda$WITH_CUDA"
  # A wheel built against one torch must never be used with another: the cache key
  # says which torch (and whether CUDA ops are in it).
  MMCV_WHEEL="$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$MMCV_WHEEL" ]]; then
    say "building mmcv $MMCV_VERSION with its C++ ops (CUDA ops: $WITH_CUDA); about 8 minutes"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    # Only the source distribution: pip resolves it from the configured index.
    "${PIP[@]}" download -q --no-deps --no-binary mmcv --no-build-isolation \
      "mmcv==$MMCV_VERSION" -d "$BUILD" || die "could not download the mmcv $MMCV_VERSION source"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    SRC="$(find "$BUILD" -maxdepth 1 -type d -name "mmcv-$MMCV_VERSION")"
    [[ -n "$SRC" ]] || die "could not unpack the mmcv $MMCV_VERSION source distribution"
    # mmcv hard-codes -std=c++17, but torch 2.14's headers need C++20.
    sed -i 's/-std=c++17/-std=c++20/g; s/-std=c++14/-std=c++20/g' "$SRC/setup.py"
    mkdir -p "$WHEEL_DIR"
    # --no-build-isolation: pip's isolated build cannot see torch and would silently
    # produce an mmcv WITHOUT ops. --no-cache-dir: never reuse a wheel pip cached
    # against another torch.
    (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=$WITH_CUDA MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir -w "$BUILD/dist" .) \
      || die "building mmcv failed; see the compiler output above (gcc and the Python headers are needed)"
    mv "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"
    MMCV_WHEEL="$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl | head -n1)"
  else
    say "using cached mmcv wheel $MMCV_WHEEL"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$MMCV_WHEEL"
  # mmcv's own requirements, now that it is in place without pip's resolver touching it.
  "${PIP[@]}" install -q addict packaging Pillow pyyaml yapf

  say "installing mmdet, mmsegmentation, mmpretrain and ghostnetv2-mm"
  REQS=(-r "$ROOT/requirements/runtime.txt")
  [[ $WITH_TESTS == 1 ]] && REQS+=(-r "$ROOT/requirements/tests.txt")
  [[ $WITH_DEPLOY == 1 ]] && REQS+=(-r "$ROOT/requirements/deploy.txt")
  # Constrain mmcv and numpy to what is installed, so the resolver never swaps them.
  CONSTRAINTS="$(mktemp)"
  printf 'mmcv==%s\nnumpy<2\nopencv-python==4.10.0.84\n' "$MMCV_VERSION" > "$CONSTRAINTS"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" "${REQS[@]}"
  "${PIP[@]}" install -q --no-deps -e "$ROOT"
  rm -f "$CONSTRAINTS"
  printf '%s %s %s\n' "$STAMP_HASH" "$WITH_TESTS" "$WITH_DEPLOY" > "$STAMP"
fi

# --- checks: the stack must really work, not just be installed ---------------------------
"$VENV/bin/python" - <<'PY' || { rm -f "$STAMP"; exit 1; }
import sys
def fail(what, hint):
    print(f"[install] CHECK FAILED: {what}\n[install] fix: {hint}", file=sys.stderr)
    sys.exit(1)
try:
    import torch
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
except Exception as exc:  # noqa: BLE001 - any failure here means the same thing
    fail(f"mmcv.ops does not work ({exc!r})",
         "delete the cached mmcv wheel under ~/.cache/ghostnetv2-mm/wheels and rerun tools/install.sh")
try:
    import mmdet.models, mmseg.models, mmpretrain.models  # noqa: F401
except Exception as exc:  # noqa: BLE001
    fail(f"an OpenMMLab toolkit does not import ({exc!r})", "rerun tools/install.sh; if it persists, delete .venv")
import ghostnetv2_mm  # noqa: F401
print(f"[install] OK: torch {torch.__version__}, mmcv ops load, mmdet/mmseg/mmpretrain import")
PY
