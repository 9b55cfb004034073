#!/usr/bin/env bash
# The outcome reward model for the study's arithmetic task (docs/reward_models.md): SmolLM2 answers
# train and validation prompts, the verifier labels its answers, Bradley-Terry training on the train
# pairs, pairwise accuracy on the validation pairs. Each step resumes or skips finished work: rerun
# after a kill. Needs vLLM (`bash scripts/setup.sh --vllm`) and `aries-lit prepare-model --source smollm2`.
set -euo pipefail
cd "$(dirname "$0")/.."
C=configs/reward/outcome_arith
aries-lit generate --config $C/generate_train.yaml
aries-lit generate --config $C/generate_validation.yaml
aries-lit select --config $C/select_train.yaml
aries-lit select --config $C/select_validation.yaml
aries-lit fit --config $C/fit.yaml
