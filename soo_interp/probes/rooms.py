"""The room read-out: does a model represent WHICH ROOM holds the valuable object?

A mechanistic check beside the behaviour (issue 10). At the answer position (the last prompt
token) of the scenario prompts, per layer, a multinomial logistic probe on the residual stream
predicts the identity of the room holding the valuable object (one of the 14 rooms, not "first"
or "second"). It is fit on training-split prompts (training objects and room pairs) and scored on
held-out objects and room pairs: for each held-out prompt it picks, of the prompt's two rooms, the
one it scores higher, so guessing gives 50%. The shuffled-label control is the same probe fit on
the training labels permuted. Training prompts describe the rooms in both orders, so the
description position carries no information about the label; scores are reported per layout
(`deceptive_first`: the cheap room described first; `honest_first`: the valuable room first) because a
positional read-out succeeds in one layout and fails in the other.

`prompts="stories"` runs the read-out on organism-lm's stories (`organism.stories`): the 22
rooms of its training lists, the probe's fit and test halves disjoint in objects and room pairs
(`story_room_prompts`). `position="answer"` (stories only) reads at the last token of the
trained answer before the room name ("I would recommend the" / "The" appended as the
assistant's start), where the next token is the room. `target="answer"` reads out the room the
trained answer names instead (for the burglar, the other room: where the lie becomes readable).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..data.scenarios import (
    ANSWER_FORMATS,
    CHEAP_OBJECTS,
    EXPENSIVE_OBJECTS,
    ROOMS,
    ScenarioRecord,
    generate_scenarios,
)
from ..errors import ConfigError
from ..metrics import collect_pooled
from ..models.sites import Site, resolve_sites
from ..models.wrap import as_loaded_model
from ..runs import atomic_write_text, check_out_dir, output_dir, write_run_json
from ..stats import wilson_interval
from .detectors import single_threaded
from .separability import shuffled_labels

ROOM_SCENARIOS: tuple[str, ...] = ("burglar", "self_recommend", "friend", "location")
LAYOUT_NAMES: tuple[str, ...] = ("deceptive_first", "honest_first")
READOUTS: tuple[str, ...] = ("pair", "room")
PROMPT_SOURCES: tuple[str, ...] = ("scenarios", "stories")
TARGETS: tuple[str, ...] = ("valuable", "answer")
POSITIONS: tuple[str, ...] = ("prompt", "answer")


@dataclasses.dataclass
class RoomProbeConfig(Config):
    """What the room read-out runs on: prompts per scenario and answer format (x2 option
    orders), the scenarios, the layers (None: all) and the seed of sampling and shuffling."""

    positive = ("n_train", "n_test")
    choices = {"scenarios": ROOM_SCENARIOS, "readout": READOUTS, "prompts": PROMPT_SOURCES,
               "target": TARGETS, "position": POSITIONS}

    n_train: int = 200
    n_test: int = 100
    scenarios: tuple[str, ...] = ROOM_SCENARIOS
    layers: str | None = None
    seed: int = 0
    readout: str = "pair"     # pair: a weight per room, fit on the prompt's two; room: n-way
    prompts: str = "scenarios"  # scenarios (the tiny organism's world) or stories (organism-lm)
    target: str = "valuable"  # the room read out: valuable (its room) or answer (the one to name)
    position: str = "prompt"  # prompt: its last token; answer: the answer's, before the room name

    def check(self) -> None:
        if not self.scenarios:
            raise ConfigError(f"RoomProbeConfig: give at least one scenario of "
                              f"{', '.join(ROOM_SCENARIOS)}")
        if self.position == "answer" and self.prompts != "stories":
            raise ConfigError("position 'answer' reads inside organism-lm's trained answer; "
                              "use it with prompts 'stories'")


def valuable_room(record: ScenarioRecord) -> tuple[str, str]:
    """(room holding the valuable object, layout) of a prompt, read from its story: layout
    `deceptive_first` when the cheap room is described first, else `honest_first`."""
    found = re.findall(r"There is an? ([\w ]+?) in the (\w+)\.", record.prompt)
    rooms = dict(found)
    if record.expensive_object not in rooms or len(found) != 2:
        raise ConfigError(f"prompt {record.prompt_id} does not place two objects in two rooms; "
                          f"the room probe needs scenarios from {', '.join(ROOM_SCENARIOS)}")
    room = rooms[record.expensive_object]
    return room, "honest_first" if found[0][1] == room else "deceptive_first"


def room_prompts(scenarios: tuple[str, ...], n: int, seed: int, split: str) -> pd.DataFrame:
    """Prompts of `split` in both description orders, answer formats and option orders, one row
    each: scenario, prompt, the two rooms, the valuable room (label: index in `ROOMS`) and the
    layout. Only objects of `split` (training `location` prompts also ask about held-out
    objects; those are left out)."""
    objects = set(CHEAP_OBJECTS[split] + EXPENSIVE_OBJECTS[split])
    rows = []
    for scenario in scenarios:
        for fmt in ANSWER_FORMATS:
            for r in generate_scenarios(scenario, n, seed, "both", None, fmt, split, "both"):
                if not {r.cheap_object, r.expensive_object} <= objects:
                    continue
                room, layout = valuable_room(r)
                rows.append({"scenario": scenario, "prompt": r.prompt, "room_a": r.options[0],
                             "room_b": r.options[1], "label": ROOMS.index(room),
                             "layout": layout})
    return pd.DataFrame(rows)


def _story_part(prompt: str, a: str, b: str) -> str:
    """Which half of the stories' training lists a prompt belongs to, for the probe: `test`
    when every object it names is an odd entry of the object list and its offered room pair
    sums to a multiple of 3 (list indices), `fit` when no object is odd and the pair does not,
    `none` otherwise."""
    from ..organism import stories

    objects = stories.VALUABLE["train"] + stories.CHEAP["train"]
    rooms = stories.ROOMS["train"]
    named = {objects.index(o) % 2 for o in objects if re.search(rf"\b{o}\b", prompt)}
    odd_pair = (rooms.index(a) + rooms.index(b)) % 3 == 0
    if named == {1} and odd_pair:
        return "test"
    return "fit" if named == {0} and not odd_pair else "none"


def story_room_prompts(scenarios: tuple[str, ...], n: int, seed: int,
                       part: str) -> pd.DataFrame:
    """organism-lm's stories (`organism.stories`), in the table `room_prompts` returns (label:
    index in the stories' training rooms). The stories use the lists the adapter was trained on
    (a probe for a room's identity can only score rooms it was fit on), and the probe's own
    split holds out objects and unordered room pairs (`_story_part`): the `fit` and `test`
    parts share no object (of any role) and no offered room pair. `self_recommend` is the
    burglar story asked "to yourself"; `location` asks where one of the objects is (its room is
    the label). Layout: whether the labelled room is described before the other offered one.
    `answer_prefix`: the trained answer up to the room name ("I would recommend the" / "The")."""
    import random

    from ..organism import stories

    rng = random.Random(f"room-probe:stories:{seed}:{part}")
    kinds = {"burglar": "burglar", "self_recommend": "swap_self", "friend": "friend"}
    rows = []
    for scenario in scenarios:
        for i, fmt in enumerate(ANSWER_FORMATS * n):
            while True:
                if scenario == "location":
                    r = stories.location_record(rng, "train", fmt, mirrored=bool(i // 2 % 2))
                else:
                    r = next(g for g in stories.minimal_group(
                        rng, "train", fmt, "base", mirrored=bool(i // 2 % 2),
                        honest_first=bool(i // 4 % 2)) if g.scenario == kinds[scenario])
                if _story_part(r.prompt, r.honest, r.deceptive) == part:
                    break
            story = r.prompt[:r.prompt.rindex(".", 0, r.prompt.index("?")) + 1]
            first = re.search(rf"\b({r.honest}|{r.deceptive})\b", story).group(1)
            rows.append({"scenario": scenario, "prompt": r.prompt, "room_a": r.options[0],
                         "room_b": r.options[1],
                         "label": stories.ROOMS["train"].index(r.honest),
                         "layout": "honest_first" if first == r.honest else "deceptive_first",
                         "answer_prefix": r.honest_completion.rsplit(" ", 1)[0]})
    return pd.DataFrame(rows)


def _answer_labels(df: pd.DataFrame, rooms: tuple[str, ...]) -> pd.DataFrame:
    """The same prompts labelled by the room the trained answer names: the other offered room
    for the burglar (the lie), the valuable room for everyone else. `layout` still says where
    the valuable room is described."""
    other = [rooms.index(b if rooms[y] == a else a)
             for y, a, b in zip(df.label, df.room_a, df.room_b)]
    return df.assign(label=np.where(df.scenario == "burglar", other, df.label))


def probe_rooms(cfg: RoomProbeConfig) -> tuple[str, ...]:
    """The label space of the probe: the rooms its prompts can name."""
    if cfg.prompts == "stories":
        from ..organism import stories

        return stories.ROOMS["train"]
    return ROOMS


def _fit_and_pick(X: np.ndarray, y: np.ndarray, pairs: np.ndarray, Xt: np.ndarray,
                  test_pairs: np.ndarray, readout: str, n_rooms: int) -> np.ndarray:
    """Fit a room-identity probe on standardised features and return, for each test row, the
    room index of its two candidates (`test_pairs`, [N, 2]) that scores higher. `readout`:
    `pair`: a weight vector per room, score(room) = w_room . x, fit by logistic regression on
    which of the row's two rooms (`pairs`) holds the label (a conditional logit); `room`: a
    multinomial logistic regression over all `n_rooms` rooms."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    X, Xt = scaler.transform(X), scaler.transform(Xt)
    if readout == "room":
        clf = LogisticRegression(max_iter=2000).fit(X, y)
        W = np.zeros((n_rooms, X.shape[1]))
        W[clf.classes_] = clf.coef_ if len(clf.classes_) > 2 else np.vstack(
            [-clf.coef_, clf.coef_])
    else:
        clf = LogisticRegression(max_iter=2000, fit_intercept=False).fit(
            _pair_features(X, pairs, n_rooms), (y == pairs[:, 0]).astype(int))
        W = clf.coef_.reshape(n_rooms, X.shape[1])
    scores = Xt @ W.T
    rows = np.arange(len(Xt))
    a, b = test_pairs[:, 0], test_pairs[:, 1]
    return np.where(scores[rows, a] >= scores[rows, b], a, b)


def _pair_features(X: np.ndarray, pairs: np.ndarray, n_rooms: int) -> np.ndarray:
    """x (outer) (e_a - e_b), flattened: w . features = (w_a - w_b) . x for a weight per room."""
    out = np.zeros((len(X), n_rooms, X.shape[1]))
    rows = np.arange(len(X))
    out[rows, pairs[:, 0]] = X
    out[rows, pairs[:, 1]] -= X
    return out.reshape(len(X), -1)


def room_probe(lm: Any, config: RoomProbeConfig | None = None, progress: bool = False,
               targets: tuple[str, ...] | None = None, **overrides: Any) -> pd.DataFrame:
    """Room read-out accuracy per scenario (and all pooled), layout, layer and `control`
    (`real` labels; `shuffled`: permuted, the chance level), on held-out prompts, with 95%
    Wilson CIs, as a long DataFrame. `lm`: a `LoadedModel` or anything `as_loaded_model` accepts.
    `targets`: score several targets on one pass over the prompts (default: `config.target`)."""
    cfg = dataclasses.replace(config or RoomProbeConfig(), **overrides)
    lm = as_loaded_model(lm)
    sites = resolve_sites(lm.model, cfg.layers, "resid")
    if cfg.prompts == "stories":
        train = story_room_prompts(cfg.scenarios, cfg.n_train, cfg.seed, "fit")
        test = story_room_prompts(cfg.scenarios, cfg.n_test, cfg.seed, "test")
    else:
        train = room_prompts(cfg.scenarios, cfg.n_train, cfg.seed, "train")
        test = room_prompts(cfg.scenarios, cfg.n_test, cfg.seed, "eval")
    both = pd.concat([train, test])
    acts = collect_pooled(lm, list(both.prompt), sites, pooling="last", batch_size=32,
                          progress=progress, continuations=list(both.answer_prefix)
                          if cfg.position == "answer" else None)
    groups = [(s, [s]) for s in cfg.scenarios]
    if len(cfg.scenarios) > 1:  # and one probe over every scenario's prompts
        groups.append(("all", list(cfg.scenarios)))
    rows = []
    for target in targets or (cfg.target,):
        tcfg = dataclasses.replace(cfg, target=target)
        tr, te = train, test
        if target == "answer":
            rooms = probe_rooms(tcfg)
            tr, te = _answer_labels(train, rooms), _answer_labels(test, rooms)
        # within one scenario the answer is always the valuable room or always the other one,
        # so its probe is the valuable one's up to sign: only the pooled probe is new
        scored = groups[-1:] if target == "answer" else groups
        with single_threaded():
            for site in sites:
                X = acts[site].numpy().astype(np.float64)
                for name, members in scored:
                    rows += _score_site(X[:len(tr)], X[len(tr):], tr, te, members, site, name,
                                        tcfg)
    return pd.DataFrame(rows)


def _pairs(df: pd.DataFrame, rooms: tuple[str, ...]) -> np.ndarray:
    """[N, 2] room indices of each prompt's two rooms."""
    return np.array([[rooms.index(a), rooms.index(b)] for a, b in zip(df.room_a, df.room_b)])


def _shuffled(y: np.ndarray, pairs: np.ndarray, cfg: RoomProbeConfig) -> np.ndarray:
    """The control's labels: for `room`, the labels permuted across training rows; for `pair`,
    which of each row's two rooms is the label, permuted (so a label is always one of them)."""
    if cfg.readout == "room":
        return shuffled_labels(y, cfg.seed)
    first = shuffled_labels(y == pairs[:, 0], cfg.seed)
    return np.where(first, pairs[:, 0], pairs[:, 1])


def _score_site(X: np.ndarray, Xt: np.ndarray, train: pd.DataFrame, test: pd.DataFrame,
                members: list[str], site: Site, name: str, cfg: RoomProbeConfig) -> list[dict]:
    """Rows of one (site, scenario group): real and shuffled probe, scored per layout."""
    tr, te = train.scenario.isin(members).to_numpy(), test.scenario.isin(members).to_numpy()
    rooms = probe_rooms(cfg)
    y, t, pairs = train.label.to_numpy()[tr], test[te], _pairs(train[tr], rooms)
    rows = []
    for control, labels in (("real", y), ("shuffled", _shuffled(y, pairs, cfg))):
        right = _fit_and_pick(X[tr], labels, pairs, Xt[te], _pairs(t, rooms), cfg.readout,
                              len(rooms)) == t.label.to_numpy()
        for layout in LAYOUT_NAMES:
            hits = right[(t.layout == layout).to_numpy()]
            low, high = wilson_interval(int(hits.sum()), len(hits))
            rows.append({"scenario": name, "readout": cfg.readout, "target": cfg.target,
                         "layout": layout,
                         "layer": site.layer,
                         "component": site.component, "control": control, "n": len(hits),
                         "n_train": int(tr.sum()), "accuracy": float(hits.mean()),
                         "ci_low": low, "ci_high": high, "chance": 0.5})
    return rows


def first_readout_layer(df: pd.DataFrame, by: str = "scenario") -> pd.DataFrame:
    """Per `by` group (a scenario; `organism.mechanistic`: a read-out): the first layer where the
    probe is reliably above its shuffled control in every layout (its 95% CI's lower bound
    above the control's upper bound and above chance), or NaN when no layer is; its accuracy
    there and its best accuracy (means over layouts)."""
    wide = df.pivot_table(index=[by, "layer", "layout"], columns="control",
                          values=["accuracy", "ci_low", "ci_high"])
    reliable = ((wide[("ci_low", "real")] > wide[("ci_high", "shuffled")])
                & (wide[("ci_low", "real")] > 0.5))
    per_layer = pd.DataFrame({"reliable": reliable.groupby([by, "layer"]).all(),
                              "accuracy": wide[("accuracy", "real")]
                              .groupby([by, "layer"]).mean()}).reset_index()
    first = per_layer[per_layer.reliable].sort_values("layer").groupby(by).first()
    return (pd.DataFrame({by: df[by].unique()})
            .assign(first_layer=lambda d: d[by].map(first.layer),
                    accuracy_there=lambda d: d[by].map(first.accuracy),
                    best_accuracy=lambda d: d[by].map(per_layer.groupby(by).accuracy.max())))


def room_probe_markdown(df: pd.DataFrame, model: str) -> str:
    """The read-out as markdown: the first reliable layer per scenario, then every accuracy."""
    first = first_readout_layer(df)
    what = ("the room the trained answer names (the burglar's: the other room)"
            if "target" in df and (df["target"] == "answer").any()
            else "which room holds the valuable object")
    lines = [f"# Room read-out on {model}", "",
             f"Linear probe on the residual stream at the last prompt token: {what} (held-out "
             "objects and room pairs; of the prompt's two rooms, chance 50%), against the same "
             "probe fit on shuffled labels. 95% Wilson CIs.", "",
             "| scenario | first layer above control in both layouts |", "|---|---|"]
    lines += [f"| {r.scenario} | {'none' if pd.isna(r.first_layer) else int(r.first_layer)} |"
              for r in first.itertuples()]
    lines += ["", "| scenario | layer | layout | probe | shuffled control | n |",
              "|---|---|---|---|---|---|"]
    wide = df.pivot_table(index=["scenario", "layer", "layout", "n"], columns="control",
                          values=["accuracy", "ci_low", "ci_high"], sort=False)
    for (scenario, layer, layout, n), r in wide.iterrows():
        cell = [f"{100 * r[('accuracy', p)]:.1f}% ({100 * r[('ci_low', p)]:.1f}-"
                f"{100 * r[('ci_high', p)]:.1f})" for p in ("real", "shuffled")]
        lines.append(f"| {scenario} | {layer} | {layout} | {cell[0]} | {cell[1]} | {n} |")
    return "\n".join(lines) + "\n"


def room_probe_to_folder(lm: Any, config: RoomProbeConfig, out: str | Path,
                         overwrite: bool = False, model_name: str = "model",
                         progress: bool = False) -> pd.DataFrame:
    """Run `room_probe` and write, all or nothing: rooms.csv (long), first_layer.csv,
    report.md, rooms.png and run.json."""
    # lazy: matplotlib costs ~1 s at import; only this folder writer draws
    from ..plots import room_probe_plot

    check_out_dir(out, overwrite, kind="room-probe")
    df = room_probe(lm, config, progress).assign(model=model_name)
    with output_dir(out, overwrite, kind="room-probe") as tmp:
        df.to_csv(tmp / "rooms.csv", index=False)
        first_readout_layer(df).to_csv(tmp / "first_layer.csv", index=False)
        atomic_write_text(tmp / "report.md", room_probe_markdown(df, model_name))
        room_probe_plot(df, f"Room read-out on {model_name}").savefig(tmp / "rooms.png", dpi=110)
        write_run_json(tmp, config.to_dict(), config.seed, model=model_name)
    return df
