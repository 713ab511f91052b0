#!/bin/bash
# Copy the small result files of a protocol folder into a report folder:
#   bash reports/rl_physical_deception/copy_results.sh runs/paper8 reports/rl_physical_deception/episodes_40000
# report.md, summary CSVs and figures (`rl report`), the per-eval-seed values, states, traps and
# fine-tuning results, each run's training log, and one run's run.json (settings and versions).
set -e
R=$1; D=$2
[ -d "$R/report" ] || { echo "no $R/report: run soo-interp rl report --runs $R first" >&2; exit 2; }
mkdir -p $D
cp $R/report/*.csv $R/report/*.md $R/report/*.png $D/
for v in $R/value $R/value-ep*; do
  [ -f $v/value.csv ] || continue
  sfx=${v#$R/value}
  cp $v/value.csv $D/value$sfx.csv; cp $v/states.csv $D/states$sfx.csv
  cp $v/value_pairs.csv $D/value_pairs$sfx.csv; cp $v/run.json $D/value_run$sfx.json
done
if [ -f $R/traps/traps.csv ]; then cp $R/traps/traps.csv $D/; cp $R/traps/run.json $D/traps_run.json; fi
if [ -f $R/finetune/finetune.csv ]; then
  cp $R/finetune/finetune.csv $D/; cp $R/finetune/finetune_log.csv $D/; cp $R/finetune/run.json $D/finetune_run.json
fi
for r in $R/*-s*/; do n=$(basename $r); [ -f $r/log.csv ] && cp $r/log.csv $D/log_$n.csv; done
first=$(ls -d $R/*-s*/ | head -1); cp $first/run.json $D/train_run_$(basename $first).json
du -sh $D
