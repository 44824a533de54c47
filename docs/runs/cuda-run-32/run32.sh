#!/usr/bin/env bash
# Run 32: profiles of the Pre-LN baseline, layer dropping and both (run 31's build), to find why
# their speedups fell to 90 % and 82 % of the FLOP ratio once the baseline got faster.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/prof
for c in pre-ln-256x128 layer-drop-256x128 both-256x128 token-drop-256x128; do
  DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=200 timeout 60 $B/bert_base_grid.rows $c bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/$c.txt 2>&1
done
tar czf $OUT/all.tgz -C /tmp prof
grep -h "in all ops\|mean_blocks\|median step" /tmp/prof/*.txt | tail -20
