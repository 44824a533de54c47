#!/usr/bin/env bash
# Run 40: parity of pad (every GEMM padded, fp32; bf16); A/B of ce and pad; the table with
# PyTorch on the faster build at 256 x 128.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
DROPBERT_PAD_EVERY_GEMM=1 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cp > $OUT/check-padded.txt 2>&1; echo "fp32 every GEMM padded check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
for f in check-padded check-bf16; do echo "$f:"; grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/$f.txt | sort | uniq -c; done
ROUNDS=1 timeout 100 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512 \
    $B/bert_base_grid.ce $B/bert_base_grid.pad > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
winner=$(python3 -c "
import json,sys
rows=[json.loads(l) for l in open('/tmp/ab/ab.jsonl')]
t={r['binary']: r.get('mean_step_seconds', 1e9) for r in rows if r.get('configuration')=='Base256x128' and not r.get('failed')}
print(min(t, key=t.get) if t else 'bert_base_grid.ce')")
echo "table on $winner"; echo "$winner" > $OUT/winner.txt
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 280 bash benches/cuda_perf.sh $B/$winner /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
tar czf $OUT/all.tgz -C /tmp cp cb ab
cat $OUT/table.md
