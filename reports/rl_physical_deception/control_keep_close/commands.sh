#!/bin/bash
# The control task (--env variant=keep_close): baselines and per-seed SOO / plain fine-tuning come
# from lane a of ../episodes_40000/commands.sh (resumable). This script gathers the seeds whose
# fine-tuning is done into runs/control-part, evaluates them together and writes the report;
# then: bash reports/rl_physical_deception/copy_results.sh runs/control-part reports/rl_physical_deception/control_keep_close
cd /work/wt-rl
export OMP_NUM_THREADS=1 PYTHONPATH=/work/wt-rl
rm -rf runs/control-part; mkdir -p runs/control-part/finetune.policies
seeds=()
for f in runs/control/finetune-s*/finetune.csv; do
  s=$(basename $(dirname $f)); s=${s#finetune-s}; seeds+=($s)
  ln -s ../control/deceptive-s$s runs/control-part/deceptive-s$s
  for d in runs/control/finetune-s$s.policies/*; do ln -s ../../control/finetune-s$s.policies/$(basename $d) runs/control-part/finetune.policies/$(basename $d); done
done
echo "seeds: ${seeds[*]}"
nice -n 19 /work/main/.venv/bin/python -m soo_interp rl finetune --runs runs/control-part --conditions soo,plain || exit 1
nice -n 19 /work/main/.venv/bin/python -m soo_interp rl report --runs runs/control-part || exit 1
