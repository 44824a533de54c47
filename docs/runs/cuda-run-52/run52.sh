#!/usr/bin/env bash
# Run 52: dropbert's execution order (build exec) against luminal's (build vec): parity in
# float32 with the BERT-base check, then the A/B at 256 x 128 (baseline and both) and 32 x 512
# (both), two rounds each.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
BERT_BASE_REFERENCE=$B/bbref timeout 170 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|fingerprints\|bert-base" $OUT/check.txt | sort | uniq -c
left=$((570 - SECONDS)); echo "A/B: ${left} s left"
ROUNDS=2 timeout $left bash benches/cuda_ab.sh /tmp/ab base-256x128,both-256x128,both-32x512 $B/vec $B/exec > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat /tmp/ab/ab.txt
python3 -c "
import json
for l in open('/tmp/ab/ab.jsonl'):
    r=json.loads(l)
    if 'configuration' in r: print(r['configuration'], r['binary'], round(r['mean_step_seconds']*1e3,2), 'host', round(r['median_execute_host_seconds']*1e3,2))
"
