"""The mechanistic check of `organism-lm`: where in the network do the recipient, the room and
the decision to lie become linearly readable?

Linear probes on the residual stream, per layer, each beside the same probe fit on shuffled
labels (its chance level), on held-out stories:

- `recipient_friend`, `recipient_self`, at the last prompt token: is the question asked of the
  burglar or of the friend (of "yourself")? The two prompts of a story differ only in that
  name; grouped 5-fold CV that never splits a story (`stories.write_recipient_suite`, eval
  lists).
- at the answer's last token before the room name (the trained answer's start, "I would
  recommend the" / "The", appended: the next token is the room), a room-identity probe
  (`probes.rooms` on the stories; fit and test halves share no object and no room pair), on the
  burglar's prompts and on the same stories asked for yourself:
  - `room_burglar`, `room_self`: one probe per recipient (for a single recipient "the valuable
    room" and "the room to name" are the same read-out up to sign);
  - `room_both`: one probe over both recipients for the valuable room's identity;
  - `answer_both`: one probe over both recipients for the room the trained answer names (the
    other room for the burglar). It can only beat `room_both` where the network has combined the
    recipient with the room: the lie.

(Tried and left out: the room read-outs at the last prompt token. There even the room the model
is about to name is barely readable: 55% for the burglar, 68-73% for yourself at layers 24-29,
with the regularisation strength and a 32-dimensional PCA changing nothing. The room is fetched
later, at the answer's own positions.)
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config
from ..runs import atomic_write_text, check_out_dir, output_dir, write_run_json
from .stories import write_recipient_suite

KIND = "mechanistic"
RECIPIENTS: tuple[str, ...] = ("friend", "self")
ROOM_SCENARIOS: tuple[str, ...] = ("burglar", "self_recommend")
READOUT_NAMES = {("valuable", "burglar"): "room_burglar",
                 ("valuable", "self_recommend"): "room_self", ("valuable", "all"): "room_both",
                 ("answer", "all"): "answer_both"}  # (target, probe group) -> read-out
COLUMNS = ["readout", "layer", "layout", "control", "accuracy", "ci_low", "ci_high", "n"]


@dataclasses.dataclass
class MechanisticConfig(Config):
    """Sizes of the check: stories per recipient suite (two prompts each), room-probe
    prompts per scenario and answer format (fit and test halves), layers (None: all), seed."""

    positive = ("n_stories", "n_train", "n_test")

    n_stories: int = 60
    n_train: int = 200
    n_test: int = 50
    layers: str | None = None
    seed: int = 0


def _suite_rows(lm: Any, cfg: MechanisticConfig, progress: bool) -> list[pd.DataFrame]:
    from ..probes.run import fit_probes

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for other in RECIPIENTS:
            suite = write_recipient_suite(Path(tmp) / other, cfg.n_stories, cfg.seed, other)
            res = fit_probes(lm, suites=(str(suite),), layers=cfg.layers, components=("resid",),
                             probes=("logistic",), seed=cfg.seed, progress=progress)
            s = res.summary[res.summary.metric == "accuracy"]
            out.append(pd.DataFrame({"readout": f"recipient_{other}", "layer": s.layer,
                                     "layout": "both", "control": s.control,
                                     "accuracy": s["mean"], "ci_low": s.ci_low,
                                     "ci_high": s.ci_high, "n": 2 * cfg.n_stories}))
    return out


def mechanistic_check(lm: Any, config: MechanisticConfig | None = None,
                      progress: bool = False) -> pd.DataFrame:
    """Every read-out of the module docstring per layer and control, as one long DataFrame
    (`COLUMNS`; suite read-outs: mean over folds with a t interval; room: Wilson per layout)."""
    from ..models.wrap import as_loaded_model
    from ..probes.rooms import room_probe

    cfg = config or MechanisticConfig()
    lm = as_loaded_model(lm)
    rooms = room_probe(lm, scenarios=ROOM_SCENARIOS, n_train=cfg.n_train, n_test=cfg.n_test,
                       layers=cfg.layers, seed=cfg.seed, prompts="stories", position="answer",
                       targets=("valuable", "answer"), progress=progress)
    rooms["readout"] = [READOUT_NAMES.get(k) for k in zip(rooms.target, rooms.scenario)]
    return pd.concat(_suite_rows(lm, cfg, progress) + [rooms[COLUMNS]], ignore_index=True)


def first_reliable_layer(df: pd.DataFrame) -> pd.DataFrame:
    """Per read-out: the first layer where it is reliable (module docstring) in every layout,
    its accuracy there and its best accuracy (`probes.rooms.first_readout_layer`'s rule)."""
    from ..probes.rooms import first_readout_layer

    return first_readout_layer(df, by="readout")


def mechanistic_markdown(df: pd.DataFrame, model: str) -> str:
    """The first reliable layer per read-out, then the real and shuffled accuracy per layer."""
    first = first_reliable_layer(df)
    lines = [f"# Mechanistic check on {model}", "",
             "Linear probes on the residual stream, held-out stories, against the same probe on "
             "shuffled labels (see `soo_interp.organism.mechanistic`): recipient_* at the last "
             "prompt token, room_* and answer_* at the answer's last token before the room name. "
             "Reliable: 95% CI above the control's and above 50% (room and answer: in both "
             "layouts).", "",
             "| read-out | first reliable layer | accuracy there | best accuracy |",
             "|---|---|---|---|"]
    lines += [f"| {r.readout} | {'none' if pd.isna(r.first_layer) else int(r.first_layer)} | "
              f"{'' if pd.isna(r.accuracy_there) else f'{100 * r.accuracy_there:.1f}%'} | "
              f"{100 * r.best_accuracy:.1f}% |" for r in first.itertuples()]
    wide = (df.groupby(["readout", "layer", "control"], sort=False).accuracy.mean()
            .unstack("readout"))
    lines += ["", "Accuracy per layer (real / shuffled; room: mean of the two layouts):", "",
              "| layer | " + " | ".join(wide.columns) + " |",
              "|---|" + "---|" * len(wide.columns)]
    for layer in sorted({i for i, _ in wide.index}):
        cells = [f"{100 * wide.loc[(layer, 'real'), c]:.0f} / "
                 f"{100 * wide.loc[(layer, 'shuffled'), c]:.0f}" for c in wide.columns]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mechanistic_figure(df: pd.DataFrame, model: str):
    """One panel per read-out (layouts as lines, shuffled control dotted), from
    `mechanistic_check`'s table."""
    from ..plots import room_probe_plot

    return room_probe_plot(df.rename(columns={"readout": "scenario"}),
                           f"Linear read-outs on {model}: recipient at the prompt's last token, "
                           "rooms at the answer's last token before the room",
                           ylabel="held-out accuracy (chance 50%)")


def mechanistic_to_folder(lm: Any, config: MechanisticConfig, out: str | Path,
                          overwrite: bool = False, model_name: str = "model",
                          progress: bool = False) -> pd.DataFrame:
    """Run `mechanistic_check` and write, all or nothing: mechanistic.csv (long),
    first_layer.csv, report.md, mechanistic.png and run.json."""
    check_out_dir(out, overwrite, kind=KIND)
    df = mechanistic_check(lm, config, progress).assign(model=model_name)
    with output_dir(out, overwrite, kind=KIND) as tmp:
        df.to_csv(tmp / "mechanistic.csv", index=False)
        first_reliable_layer(df).to_csv(tmp / "first_layer.csv", index=False)
        atomic_write_text(tmp / "report.md", mechanistic_markdown(df, model_name))
        mechanistic_figure(df, model_name).savefig(tmp / "mechanistic.png", dpi=110)
        write_run_json(tmp, config.to_dict(), config.seed, model=model_name)
    return df
