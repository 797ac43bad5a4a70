#!/usr/bin/env bash
# Optional: install auto_LiRPA (and PyTorch, CPU only) for benches/compare_auto_lirpa.py.
#
# Never needed by CI or by `cargo test`/`cargo bench`. This is the only place the comparison
# downloads anything; the harness itself never does. Idempotent: re-running skips what is there.
#
#   bash benches/setup_auto_lirpa.sh            # venv in /work/venv-lirpa, source in /work/auto_LiRPA-src
#   LIRPA_VENV=~/lirpa LIRPA_SRC=~/auto_LiRPA bash benches/setup_auto_lirpa.sh
#
# What it installs (the versions of ../shared/benchmarks/reference/README.md):
# - PyTorch 2.8.0 from PyPI with `--no-deps` (skips the ~3 GB of nvidia CUDA wheels; the CPU
#   path needs none of them) plus its small pure-Python dependencies; falls back to the full
#   install if `import torch` then fails;
# - onnx, numpy;
# - auto_LiRPA built from the GitHub repository at commit a050a3d61f4cb68b108fa7f07dcb3e4d7ef304df
#   ("May 2026 release", 0.7.1; the PyPI package `auto-lirpa` is the old 0.3), installed editable
#   with `--no-deps` plus the modules it imports at run time (tqdm, packaging, appdirs, graphviz
#   python bindings, pyyaml). torchvision is not needed for the networks compared here.
#
# Source of auto_LiRPA: $LIRPA_GIT (default: the local snapshot
# /work/.mirror/Verified-Intelligence+auto_LiRPA/repo if present, else the GitHub URL).
set -euo pipefail

VENV=${LIRPA_VENV:-/work/venv-lirpa}
SRC=${LIRPA_SRC:-/work/auto_LiRPA-src}
COMMIT=a050a3d61f4cb68b108fa7f07dcb3e4d7ef304df
if [[ -z "${LIRPA_GIT:-}" ]]; then
    if [[ -d /work/.mirror/Verified-Intelligence+auto_LiRPA/repo ]]; then
        LIRPA_GIT=/work/.mirror/Verified-Intelligence+auto_LiRPA/repo
    else
        LIRPA_GIT=https://github.com/Verified-Intelligence/auto_LiRPA.git
    fi
fi
PYTHON=${PYTHON:-python3}

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

if ! "$PY" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.8.0")' 2>/dev/null; then
    echo "installing torch 2.8.0 (no CUDA dependencies)"
    "${PIP[@]}" --no-deps torch==2.8.0
    "${PIP[@]}" filelock typing-extensions 'sympy>=1.13.3' networkx jinja2 fsspec
    if ! "$PY" -c 'import torch; torch.ones(2, 2, dtype=torch.float64) @ torch.ones(2, 2, dtype=torch.float64)'; then
        echo "torch without its dependencies does not import; installing torch 2.8.0 with all of them"
        "${PIP[@]}" torch==2.8.0
    fi
fi
"${PIP[@]}" onnx numpy tqdm packaging appdirs graphviz pyyaml setuptools wheel

if [[ ! -d "$SRC/.git" ]]; then
    echo "cloning auto_LiRPA from $LIRPA_GIT into $SRC"
    git clone --quiet "$LIRPA_GIT" "$SRC"
fi
if git -C "$SRC" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    git -C "$SRC" checkout --quiet "$COMMIT"
else
    echo "warning: commit $COMMIT not in $LIRPA_GIT; using its newest commit" >&2
fi
if ! "$PY" -c 'import auto_LiRPA' 2>/dev/null; then
    (cd "$SRC" && "${PIP[@]}" --no-deps --no-build-isolation -e .)
fi
"$PY" - <<'EOF'
import torch, onnx, numpy, auto_LiRPA
print(f"ok: torch {torch.__version__}, onnx {onnx.__version__}, numpy {numpy.__version__}, "
      f"auto_LiRPA {auto_LiRPA.__version__} ({auto_LiRPA.__file__})")
EOF
