#!/usr/bin/env bash
# Run 37: A/B of ptr and ce (cross-entropy kernels with four loads in flight); parity of ce; a
# profile of ce; PyTorch's decoder GEMMs at vocabulary 30522 and 30528.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 60 python3 docs/runs/cuda-run-37/decoder_alignment.py > $OUT/decoder_alignment.txt 2>&1; cat $OUT/decoder_alignment.txt | tail -4
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 200 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512 \
    $B/bert_base_grid.ptr $B/bert_base_grid.ce > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
mkdir -p /tmp/prof
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout 90 $B/bert_base_grid.ce base-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/base-256x128.txt 2>&1
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout 90 $B/bert_base_grid.ce base-32x512 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/base-32x512.txt 2>&1
tar czf $OUT/all.tgz -C /tmp c cb ab prof
