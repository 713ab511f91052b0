#!/bin/bash
# The control task (--env variant=keep_close), 4 deceptive + 4 honest baselines at 40,000 episodes,
# the deceptive ones fine-tuned with SOO and with plain continued training: lane a of
# ../episodes_40000/commands.sh made runs/control (resumable); this folder is its report.
# Seeds 4-7 and the 8-model analysis: commands_seeds4-7.sh beside this file (resumable; it moves
# the 4-model analysis aside to runs/control-analysis-seeds0-3 and rewrites this folder).
cd /work/wt-rl
bash reports/rl_physical_deception/episodes_40000/commands.sh a || exit 1
PYTHONPATH=/work/wt-rl nice -n 19 /work/main/.venv/bin/python -P -m soo_interp rl report --runs runs/control || exit 1
bash reports/rl_physical_deception/copy_results.sh runs/control reports/rl_physical_deception/control_keep_close
