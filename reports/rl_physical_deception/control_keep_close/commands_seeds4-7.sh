#!/bin/bash
# The control task (issue 22 item 5) with 8 deceptive models: seeds 4-7 added to seeds 0-3 of
# ../episodes_40000/commands.sh (lane a), with the same frozen code and settings, in ONE worker
# at the lowest priority. Every step is resumable: rerun this script to continue where it
# stopped (finished steps are skipped; the last ones only rewrite the report):
#   cd /work/wt-rl && setsid nohup bash reports/rl_physical_deception/control_keep_close/commands_seeds4-7.sh \
#       > runs/lane_c.log 2>&1 &  echo 19 > /proc/$!/autogroup
#  1) deceptive control baselines (keep_close, 40,000 episodes) seeds 4-7 -> runs/control, each
#     fine-tuned at once with SOO and plain (10,000 episodes) -> runs/control/finetune-sN(.policies)
#  2) the 4-model analysis (runs/control/{finetune,value,traps,report}) is moved aside to
#     runs/control-analysis-seeds0-3/; the tuned policies of all 8 seeds are linked into
#     runs/control/finetune.policies and evaluated together (rl finetune --seeds 0-7); values
#     and traps of all 12 control models (8 deceptive, 4 honest) recomputed; report; copied here.
cd /work/wt-rl
export OMP_NUM_THREADS=1
TRAIN_CODE=/work/wt-rl/runs/code-a1c3493   # frozen code the baselines were trained with
CODE=/work/wt-rl/runs/code-ft              # same training code, + `rl finetune --conditions`, traps
py() { PYTHONPATH=$1 nice -n 19 /work/main/.venv/bin/python -P -m soo_interp rl "${@:2}"; }

for s in 4 5 6 7; do
  echo "seed $s start $(date -u)"
  py $TRAIN_CODE train --out runs/control --baselines deceptive --seeds $s --episodes 40000 \
     --workers 1 --resume --env variant=keep_close || exit 1
  echo "seed $s trained $(date -u)"
  [ -f runs/control/finetune-s$s/finetune.csv ] || py $CODE finetune --runs runs/control --seeds $s \
     --conditions soo,plain --out runs/control/finetune-s$s || exit 1
  echo "seed $s fine-tuned $(date -u)"
done

old=runs/control-analysis-seeds0-3   # the 4-model analysis, kept
if [ ! -d $old ]; then
  mkdir -p $old.tmp
  for d in finetune value traps report; do [ -e runs/control/$d ] && { mv runs/control/$d $old.tmp/ || exit 1; }; done
  mv $old.tmp $old || exit 1
fi
mkdir -p runs/control/finetune.policies
for d in runs/control/finetune-s*.policies/*; do
  [ -e runs/control/finetune.policies/$(basename $d) ] || ln -s ../$(basename $(dirname $d))/$(basename $d) runs/control/finetune.policies/$(basename $d)
done
[ -f runs/control/finetune/finetune.csv ] || py $CODE finetune --runs runs/control --seeds 0-7 --conditions soo,plain || exit 1
[ -f runs/control/value/value.csv ] || py $CODE value --runs runs/control --episodes 200 --eval-seeds 10 || exit 1
[ -f runs/control/traps/traps.csv ] || py $CODE traps --runs runs/control || exit 1
py /work/wt-rl report --runs runs/control || exit 1   # the current code's report (+ within-base table)
bash reports/rl_physical_deception/copy_results.sh runs/control reports/rl_physical_deception/control_keep_close || exit 1
echo "CONTROL 8 DONE $(date -u)"
