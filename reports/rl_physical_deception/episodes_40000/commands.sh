#!/bin/bash
# DONE (lane a: "CONTROL VALUES DONE", lane b: "PAPER8 FINETUNE DONE" in runs/lane_*.log). What
# this script ran, in two lanes of one worker each at nice 19, every step resumable (rerun it to
# continue where it stopped; on finished runs it only rewrites the two reports):
# Before (the first chain): paper-length baselines seeds 0-4 per class into runs/paper with
# snapshots at 2,500/10,000 episodes; the SOO / shuffled-sham / plain fine-tuning (10,000 episodes)
# of deceptive seeds 0-4 (runs/paper/finetune.policies, reused below).
# Lane A, the control task (issue 22 item 5):
#  1) control-task (keep_close) deceptive baselines seeds 0-3 -> runs/control
#  2) SOO and plain fine-tuning (10,000 episodes) of each as soon as it is trained (seeds 0-1
#     and 2-3 in two workers) -> runs/control/finetune-sN(.policies); then all of them
#     -> runs/control/finetune, report
#  3) control-task honest baselines seeds 0-3; values and traps of the 8 control models, report
# Lane B, more seeds at paper length (item 1):
#  1) paper-length baselines seeds 5-7 per class -> runs/paper-more; runs/paper8 joins all 16
#     (links); values at 40k/2.5k/10k of the 16 models, traps (cross-play), report
#  2) SOO / sham / plain fine-tuning of deceptive seeds 5-7 (seeds 0-4 reused from runs/paper),
#     evaluated together with 0-4 -> runs/paper8/finetune, report
# Then the committed report folders (written by the current code's `rl report`, whose report.md
# and figures equal the frozen code's plus the within-base table):
#   PYTHONPATH=/work/wt-rl /work/main/.venv/bin/python -P -m soo_interp rl report --runs runs/paper8   # and runs/control
#   bash reports/rl_physical_deception/copy_results.sh runs/paper8 reports/rl_physical_deception/episodes_40000
#   bash reports/rl_physical_deception/copy_results.sh runs/control reports/rl_physical_deception/control_keep_close
cd /work/wt-rl
export OMP_NUM_THREADS=1
TRAIN_CODE=/work/wt-rl/runs/code-a1c3493   # frozen code the baselines were trained with
CODE=/work/wt-rl/runs/code-ft              # same training code, + `rl finetune --conditions`,
                                           # `rl traps`, near_red_rate and red_sensitivity
# -P: do not put the current folder (this worktree) before PYTHONPATH, so the code named runs
py() { PYTHONPATH=$1 nice -n 19 /work/main/.venv/bin/python -P -m soo_interp rl "${@:2}"; }
train() { py $TRAIN_CODE train --out runs/$1 --baselines $2 --seeds $3 --episodes 40000 --workers 1 --resume "${@:4}" || exit 1; }
values() {  # values at 40k (and at snapshots) and traps of the runs under $1, then its report
  for snap in "${@:2}"; do
    out=runs/$1/value${snap:+-ep$snap}
    [ -f $out/value.csv ] || py $CODE value --runs runs/$1 --episodes 200 --eval-seeds 10 ${snap:+--snapshot $snap} || exit 1
  done
  [ -f runs/$1/traps/traps.csv ] || py $CODE traps --runs runs/$1 || exit 1
  py $CODE report --runs runs/$1 || exit 1
}

control_seeds() {  # train each control baseline, then fine-tune it at once (SOO, plain)
  for s in "$@"; do
    train control deceptive $s --env variant=keep_close
    [ -f runs/control/finetune-s$s/finetune.csv ] || py $CODE finetune --runs runs/control --seeds $s --conditions soo,plain --out runs/control/finetune-s$s || exit 1
  done
}

lane_a() {  # seeds 0-1 and 2-3 in two parallel workers (the CPU is shared and slow)
  control_seeds 0 1 > runs/lane_a01.log 2>&1 &
  control_seeds 2 3 > runs/lane_a23.log 2>&1 &
  wait
  [ -f runs/control/finetune-s3/finetune.csv ] || exit 1
  mkdir -p runs/control/finetune.policies  # the tuned policies of every seed, then one evaluation
  for d in runs/control/finetune-s*.policies/*; do
    [ -e runs/control/finetune.policies/$(basename $d) ] || ln -s ../$(basename $(dirname $d))/$(basename $d) runs/control/finetune.policies/$(basename $d)
  done
  [ -f runs/control/finetune/finetune.csv ] || py $CODE finetune --runs runs/control --seeds 0-3 --conditions soo,plain || exit 1
  py $CODE report --runs runs/control || exit 1
  echo "CONTROL FINETUNE DONE $(date -u)"
  for s in 0 1 2 3; do train control honest $s --env variant=keep_close; done
  values control ""
  echo "CONTROL VALUES DONE $(date -u)"
}

lane_b() {
  for s in 5 6 7; do for b in deceptive honest; do train paper-more $b $s --snapshots 2500,10000; done; done
  mkdir -p runs/paper8
  for d in runs/paper/{deceptive,honest}-s* runs/paper-more/{deceptive,honest}-s*; do
    [ -e runs/paper8/$(basename $d) ] || ln -s ../${d#runs/} runs/paper8/$(basename $d)
  done
  values paper8 "" 2500 10000
  echo "PAPER8 VALUES DONE $(date -u)"
  mkdir -p runs/paper8/finetune.policies  # seeds 0-4 were tuned with the same settings: reuse them
  for d in runs/paper/finetune.policies/*; do
    [ -e runs/paper8/finetune.policies/$(basename $d) ] || ln -s ../../paper/finetune.policies/$(basename $d) runs/paper8/finetune.policies/$(basename $d)
  done
  [ -f runs/paper8/finetune/finetune.csv ] || py $CODE finetune --runs runs/paper8 || exit 1
  py $CODE report --runs runs/paper8 || exit 1
  echo "PAPER8 FINETUNE DONE $(date -u)"
}

# `commands.sh a` or `commands.sh b` runs one lane only
[ "${1:-a}" = a ] && { lane_a > runs/lane_a.log 2>&1 & }
[ "${1:-b}" = b ] && { lane_b > runs/lane_b.log 2>&1 & }
wait
echo "ALL DONE $(date -u)"
