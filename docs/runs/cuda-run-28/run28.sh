#!/usr/bin/env bash
# Run 28: A/B of head (session 11's last tree), bf16in (fused kernels read bf16 products) and
# packed (bf16in plus packed dropout masks); parity of packed (float32, bf16, dropout on);
# profiles of packed.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
ROUNDS=2 timeout 330 bash benches/cuda_ab.sh /tmp/ab base-256x128,pre-ln-256x128,layer-drop-256x128,base-32x512 \
    $B/bert_base_grid.head $B/bert_base_grid.bf16in $B/bert_base_grid.packed > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|^30 " $OUT/check.txt $OUT/check-bf16.txt
mkdir -p /tmp/prof
for c in base-256x128 pre-ln-256x128; do
  DROPBERT_PROFILE=1 timeout 60 $B/bert_base_grid.packed $c bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/$c.txt 2>&1
done
tar czf $OUT/all.tgz -C /tmp prof c cb ab
cat $OUT/ab.txt
