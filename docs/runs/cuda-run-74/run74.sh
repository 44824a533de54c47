#!/usr/bin/env bash
# Run 74: the table on the seventh session's final build, then the float32 parity check.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 470 bash benches/cuda_perf.sh $B/grid $OUT/table 10 > /tmp/perf.log 2>&1
echo "table rc=$?"; rm -f $OUT/table/log.txt; cat $OUT/table/table.md
echo "float32 check with $((590 - SECONDS)) s left"
timeout $((585 - SECONDS)) bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cf > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-fp32.txt | sort | uniq -c
