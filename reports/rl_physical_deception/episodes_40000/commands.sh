#!/bin/bash
# One worker, nice 10, every step resumable: rerun this script to continue.
# 1) paper-length baselines seeds 0-4 interleaved by class; 2) values at 40k and at the 2.5k/10k
# snapshots, report; 3) SOO / shuffled-sham / plain fine-tuning (10,000 episodes) of deceptive
# seeds 0-4, report; 5) baselines seeds 5-7; 6) control-task (keep_close) baselines.
cd /work/wt-rl
export OMP_NUM_THREADS=1 PYTHONPATH=/work/wt-rl/runs/code-a1c3493
PY="nice -n 10 /work/main/.venv/bin/python -m soo_interp rl"
train() { $PY train --out runs/$1 --baselines $2 --seeds $3 --episodes 40000 --workers 1 --resume "${@:4}" || exit 1; }
for s in 0 1 2 3 4; do for b in deceptive honest; do train paper $b $s --snapshots 2500,10000; done; done

for snap in "" 2500 10000; do
  out=runs/paper/value${snap:+-ep$snap}
  [ -f $out/value.csv ] || $PY value --runs runs/paper --episodes 200 --eval-seeds 10 ${snap:+--snapshot $snap} || exit 1
done
$PY report --runs runs/paper || exit 1
echo "VALUES DONE $(date -u)"
[ -f runs/paper/finetune/finetune.csv ] || $PY finetune --runs runs/paper --seeds 0-4 || exit 1
$PY report --runs runs/paper || exit 1
echo "ANALYSIS DONE $(date -u)"
for s in 5 6 7; do for b in deceptive honest; do train paper-more $b $s --snapshots 2500,10000; done; done
for s in 0 1 2 3; do for b in deceptive honest; do train control $b $s --env variant=keep_close; done; done
echo "ALL DONE $(date -u)"
