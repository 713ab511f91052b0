# usage: PYTHONPATH=. python -P reports/organism-lm/fit_check.py ADAPTER_DIR OUT.json [N]
# (the fit check for builds made before `organism build` ran it itself: N fresh stories per row
# from the training lists and families, seed 0, written to OUT.json)
"""The fit check of one organism-lm adapter: `build_lm.FIT_ROWS` scored on fresh stories from
the training lists and families (`score_rows(..., split="train")`), beside nothing else; the
same computation a build from recipe 5 on runs after its targets."""
import json
import sys

import torch

from soo_interp import load_model
from soo_interp.organism.build_lm import FIT_ROWS, score_rows
from soo_interp.runs import atomic_write_json

adapter, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
torch.set_num_threads(1)
with torch.no_grad():
    rows = score_rows(load_model(adapter), FIT_ROWS, n, 0, split="train")
atomic_write_json(out, {"adapter": adapter, "n": n, "seed": 0, "fit": rows})
print(json.dumps({r["row"]: round(r["rate"], 3) for r in rows}))
