#!/usr/bin/env bash
# Run 30: A/B of redbf16 (run 29) and columns (LayerNorm weight gradients in chunks); parity and a
# profile of columns.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
ROUNDS=2 timeout 200 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512,token-drop-256x128 \
    $B/bert_base_grid.redbf16 $B/bert_base_grid.columns > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|^30 " $OUT/check.txt $OUT/check-bf16.txt
mkdir -p /tmp/prof
for c in base-256x128; do
  DROPBERT_PROFILE=1 timeout 60 $B/bert_base_grid.columns $c bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/$c.txt 2>&1
done
tar czf $OUT/all.tgz -C /tmp prof c cb ab
cat $OUT/ab.txt
