#!/usr/bin/env bash
# The GPU check on a machine without network (docs/gpu_check.md).
#   bash scripts/gpu_check.sh prepare [PYVER]  on a machine with network: fill wheels/ with what the
#                                              check needs beyond torch, lightning, transformers,
#                                              torchmetrics and peft (PYVER: the GPU machine's Python,
#                                              e.g. 3.10; default this Python's), and the aries_lit wheel
#   bash scripts/gpu_check.sh [OPTIONS]        on the GPU machine: install wheels/*.whl (no index, no
#                                              deps), then python scripts/gpu_check.py [OPTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-wheels}

# pure Python: datasets and the CLI's jsonargparse, with their dependencies, and pytest
PURE="datasets dill multiprocess python-dateutil tzdata jsonargparse docstring-parser typeshed-client
pytest iniconfig pluggy"
# compiled (pyarrow alone is ~55 MB): BINARY="" or a shorter list skips what the GPU machine has
BINARY=${BINARY-"pyarrow pandas xxhash"}

if [ "${1:-}" = "prepare" ]; then
  PYVER=${2:-$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}
  mkdir -p "$WHEELS"
  # for the GPU machine's Python (multiprocess ships one wheel per Python version)
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version "$PYVER" -d "$WHEELS" $PURE $BINARY
  "$PY" -m pip wheel -q --no-deps -w "$WHEELS" .
  rm -rf build  # setuptools' build tree
  du -sh "$WHEELS"
  exit 0
fi

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "$WHEELS"/*.whl
fi
exec "$PY" scripts/gpu_check.py "$@"
