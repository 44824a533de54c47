#!/usr/bin/env bash
# Run 34: layer dropping at 32 x 512, columns against gates, three rounds: run 33's table had it
# 1.2 ms slower than run 31's, a configuration run 33's A/B did not include.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
ROUNDS=3 timeout 200 bash benches/cuda_ab.sh /tmp/ab layer-drop-32x512,layer-drop-256x128 \
    $B/bert_base_grid.columns $B/bert_base_grid.gates > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
