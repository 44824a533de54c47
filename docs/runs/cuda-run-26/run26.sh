#!/usr/bin/env bash
# Run 26: A/B of gemmr (run 25) and round (vector rounding kernel), parity of round.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/card.txt
for c in base-256x128 base-32x512; do
  for b in gemmr round gemmr round; do
    echo "== $c $b" >> $OUT/ab.log
    timeout 120 $B/bert_base_grid.$b $c bench --backend cuda --warmup 2 --steps 10 --at-step 100000 --matmul bf16 --json > /tmp/one.json 2>>$OUT/ab.log
    python3 -c "import json,sys; r=json.load(open('/tmp/one.json')); r['binary']=sys.argv[1]; print(json.dumps(r))" $b >> $OUT/ab.jsonl 2>>$OUT/ab.log
  done
done
python3 - <<'PY' | tee $OUT/ab.txt
import json,os
rows=[json.loads(l) for l in open(os.environ['OUT']+'/ab.jsonl')]
for c in sorted({r['configuration'] for r in rows}):
    for b in ['gemmr','round']:
        ms=[r['mean_step_seconds']*1e3 for r in rows if r['configuration']==c and r['binary']==b]
        pk=[r['peak_gpu_memory_bytes']/2**30 for r in rows if r['configuration']==c and r['binary']==b]
        print(c,b,' '.join('%.2f'%m for m in ms),'ms; peak %.1f GiB'%max(pk))
PY
timeout 150 bash scripts/cuda_check.sh $B/multi_config.round $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 150 bash scripts/cuda_check.sh $B/multi_config.round $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "^ok\|^DIFF\|^FAIL\|validation 30\|^30 " $OUT/check.txt $OUT/check-bf16.txt
mkdir -p /tmp/prof
for c in base-256x128; do
  DROPBERT_PROFILE=1 timeout 60 $B/bert_base_grid.round $c bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/$c.txt 2>&1
done
tar czf $OUT/all.tgz -C /tmp prof c cb
