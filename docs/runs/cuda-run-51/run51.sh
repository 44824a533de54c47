#!/usr/bin/env bash
# Run 51: the bias gradients' 4-column lanes load their 4 terms at once where aligned (build vec,
# on mask16): parity in float32 with the BERT-base check of cuda_check.sh (BERT_BASE_REFERENCE,
# its first run in that form), the A/B at 256 x 128, then parity in bf16. The session's last
# 391 s of device time.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
BERT_BASE_REFERENCE=$B/bbref timeout 150 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|fingerprints\|bert-base" $OUT/check.txt | sort | uniq -c
ROUNDS=2 timeout 100 bash benches/cuda_ab.sh /tmp/ab base-256x128 $B/mask16 $B/vec > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
left=$((330 - SECONDS)); echo "bf16 check: ${left} s left"
MATMUL=bf16 TOLERANCE=5e-2 timeout $left bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
