#!/usr/bin/env bash
# Run 53: the final build of the session's start (HEAD 702fa01's kernels, the code of run 51's
# build vec): profiles of the Pre-LN baseline and of both methods at 256 x 128 (to place Both's
# remaining excess op by op), the table with PyTorch in one call, then parity in float32 with
# the BERT-base check in whatever time is left.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p $OUT/profiles
for c in pre-ln-256x128 both-256x128; do
  DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=400 timeout 60 $B/bert_base_grid $c bench --backend cuda --warmup 1 --steps 3 --at-step 100000 --matmul bf16 > $OUT/profiles/$c.txt 2>&1
  tail -1 $OUT/profiles/$c.txt
done
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 330 bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md 2>/dev/null || tail -3 $OUT/perf.log
left=$((580 - SECONDS)); echo "fp32 check: ${left} s left"
BERT_BASE_REFERENCE=$B/bbref timeout $left bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|fingerprints\|bert-base" $OUT/check.txt | sort | uniq -c
