#!/usr/bin/env bash
# Replay the faults of docs/faults.md by hand, as a user meets them, and print what each leaves:
#   1. two `aries-lit generate` on one --out_dir (tiny model, 200 arithmetic prompts x 3 candidates)
#   2. `aries-lit fit` on a nearly full disk (a 2 MiB tmpfs, then grown to 50 MiB; needs root)
#   3. a node lost mid-`fit` (2 nodes x 1 process over loopback, node 1 SIGKILLed after a checkpoint)
#   bash scripts/replay_faults.sh [WORK_DIR]      (default /tmp/aries_faults; about 5 min on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
W=${1:-/tmp/aries_faults}
rm -rf "$W" && mkdir -p "$W"
export OMP_NUM_THREADS=1 ARIES_LIT_VERBOSE=0
aries-lit prepare-model --source tiny --out "$W/tiny" > /dev/null 2>&1
GEN='{"class_path": "sequential_refinement", "init_args": {"num_candidates": 3, "max_new_tokens": 8, "temperature": 0.7, "backend": {"class_path": "transformers", "init_args": {"dtype": "float32"}}}}'
PROMPTS='{"class_path": "arithmetic", "init_args": {"split": "train", "count": 200, "seed": 3}}'

echo "== 1. two generate runs on one folder"
gen() { aries-lit generate --model "$W/tiny" --prompts "$PROMPTS" --generator "$GEN" --out_dir "$W/gen" --progress false; }
gen > "$W/gen1.log" 2>&1 & first=$!
sleep 0.5
gen > "$W/gen2.log" 2>&1; echo "second run: exit $?"; grep "aries-lit: error" "$W/gen2.log"
wait $first; echo "first run: exit $?"
echo "candidates.jsonl: $(wc -l < "$W/gen/candidates.jsonl") lines (200 prompts x 3 candidates = 600)"

echo "== 2. fit on a nearly full disk"
FIT=(aries-lit fit --config configs/tiny/dpo_offline.yaml --model.init_args.model "$W/tiny"
     --trainer.max_steps 8 --checkpoint.every_n_train_steps 4 --trainer.enable_progress_bar false
     --trainer.default_root_dir "$W/disk/run")
mkdir -p "$W/disk"
if mount -t tmpfs -o size=2m tmpfs "$W/disk" 2>/dev/null; then
  "${FIT[@]}" > "$W/fit1.log" 2>&1; echo "2 MiB free: exit $?"; grep "aries-lit: error" "$W/fit1.log"
  ARIES_LIT_SKIP_SPACE_CHECK=1 "${FIT[@]}" > "$W/fit2.log" 2>&1; echo "check off: exit $?"
  grep "aries-lit: error" "$W/fit2.log"
  ls -la "$W/disk/run/checkpoints/"
  mount -o remount,size=50m "$W/disk"
  "${FIT[@]}" > "$W/fit3.log" 2>&1; echo "after freeing space, the same command: exit $?"
  grep -h "Restored all states\|global step\|Hugging Face model saved" "$W/fit3.log"
  umount "$W/disk"
else
  echo "(skipped: mounting a tmpfs needs root)"
fi

echo "== 3. a node lost mid-fit (2 nodes x 1 process, gloo over loopback)"
PORT=$((29600 + RANDOM % 300))
NODE=(aries-lit fit --config configs/tiny/dpo_offline.yaml --model.init_args.model "$W/tiny"
      --data.init_args.limit 16 --trainer.max_steps 24 --checkpoint.every_n_train_steps 4
      --trainer.enable_progress_bar false --trainer.strategy ddp --trainer.num_nodes 2
      --trainer.devices 1 --trainer.default_root_dir "$W/nodes")
node() { NODE_RANK=$1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$2 exec "${NODE[@]}"; }
node 0 $PORT > "$W/node0.log" 2>&1 & n0=$!
node 1 $PORT > "$W/node1.log" 2>&1 & n1=$!
until [ -e "$W/nodes/checkpoints/last.ckpt" ]; do sleep 0.05; done
kill -9 $n1; wait $n1 2>/dev/null; echo "node 1 killed after the first checkpoint"
wait $n0; echo "node 0: exit $?: $(grep -o 'Connection reset by peer' "$W/node0.log" | head -1)"
PORT=$((PORT + 1))
node 0 $PORT > "$W/node0b.log" 2>&1 & n0=$!
node 1 $PORT > "$W/node1b.log" 2>&1 & n1=$!
wait $n0; r0=$?; wait $n1; echo "rerun of both nodes: exit $r0 and $?"
grep -h "Restored all states\|Hugging Face model saved" "$W/node0b.log"
