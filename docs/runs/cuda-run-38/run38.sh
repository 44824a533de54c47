#!/usr/bin/env bash
# Run 38: parity of pitch (also with every GEMM padded); A/B of ce and pitch; a profile of pitch;
# the table on pitch with PyTorch.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
DROPBERT_PAD_EVERY_GEMM=1 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cp > $OUT/check-padded.txt 2>&1; echo "fp32 every GEMM padded check rc=$?"
for f in check check-bf16 check-padded; do echo "$f:"; grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/$f.txt | sort | uniq -c; done
ROUNDS=2 timeout 150 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512 \
    $B/bert_base_grid.ce $B/bert_base_grid.pitch > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
mkdir -p /tmp/prof
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout 60 $B/bert_base_grid.pitch base-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/base-256x128.txt 2>&1
tar czf $OUT/all.tgz -C /tmp c cb cp ab prof
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 270 bash benches/cuda_perf.sh $B/bert_base_grid.pitch /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
tail -16 $OUT/table.md
