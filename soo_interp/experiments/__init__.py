"""Which layer should I train on? A layer ablation of SOO fine-tuning against the sham control,
run as independent, resumable cells.

The grid (layers x sites x losses x seeds) gives one `soo` cell each, plus one `sham` cell per
seed (its LM loss and LoRA placement do not depend on the layer) and one `base` cell. A cell
trains its adapter from the base model, then measures the tuned model: the rates of each
scenario (log-prob scoring, mirrored and not), perplexity and next-token KL to the base on
held-out neutral text, and latent SOO at every layer and site on the held-out pairs. Each cell
writes `OUT/cells/<name>/` atomically, so a folder that exists is finished; a rerun skips
finished cells and refuses one made with another config. Cells run on any executor of
`soo_interp.executors`; `aggregate` reads the folders only, so the result is the same whichever
executor ran them, and cell folders from several machines merge by copying them into one `OUT/cells`.
The cell engine (`cells.py`: `Cell`, `CellTask`, `run_cells`) is also the one the SOO search
(`soo_interp.experiments.search`), its verdict and the control ladder
(`soo_interp.experiments.ladder`: `ladder`, `LadderConfig`, `combine_ladders`) run on; only
what a cell measures differs. Report writers (markdown, figures, summaries) live in
`reports.py`; the outcome columns every experiment writes are named and defined once in
`schema.py`.
"""
from .grid import Cell, SweepConfig, cell_hash, plan_cells
from .ladder import LadderConfig, combine_ladders, ladder
from .layer_sweep import SweepResult, aggregate, sweep
from .reports import write_summary

__all__ = ["Cell", "LadderConfig", "SweepConfig", "SweepResult", "aggregate", "cell_hash",
           "combine_ladders", "ladder",
           "plan_cells", "sweep", "write_summary"]
