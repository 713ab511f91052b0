"""The room read-out (issue 10's mechanistic check): labels read from the stories, a probe on
constructed activations whose answer is known (a room-identity code, a positional code, noise),
and the shipped organisms and a tiny random model, few prompts."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from soo_interp import load_model
from soo_interp.cli import main
from soo_interp.data.scenarios import ROOMS, generate_scenarios, room_pairs
from soo_interp.errors import ConfigError
from soo_interp.models.sites import Site
from soo_interp.probes.rooms import (
    RoomProbeConfig,
    _score_site,
    first_readout_layer,
    room_probe,
    room_prompts,
    story_room_prompts,
    valuable_room,
)

SMALL = dict(n_train=60, n_test=30)


def test_the_label_is_the_room_of_the_valuable_object_in_either_description_order():
    for layout, expected in (("paper", "deceptive_first"), ("honest_first", "honest_first")):
        for r in generate_scenarios("burglar", 5, 0, "both", layout=layout):
            assert valuable_room(r) == (r.honest, expected)  # honest = the valuable room
    for r in generate_scenarios("location", 20, 0, "both"):
        room, layout = valuable_room(r)
        assert f"There is {'an' if r.expensive_object[0] in 'aeiou' else 'a'} " \
               f"{r.expensive_object} in the {room}." in r.prompt
        first = r.prompt.index(f"in the {room}.") < r.prompt.index(
            f"in the {(set(r.options) - {room}).pop()}.")
        assert layout == ("honest_first" if first else "deceptive_first")
    with pytest.raises(ConfigError, match="two objects in two rooms"):
        valuable_room(generate_scenarios("escape_room", 1, 0)[0])


def test_training_prompts_never_hold_held_out_objects_or_room_pairs():
    train, test = room_prompts(("burglar", "location"), 40, 0, "train"), room_prompts(
        ("burglar", "location"), 40, 0, "eval")
    held_out = {frozenset(p) for p in room_pairs("eval")}
    assert not any(frozenset((a, b)) in held_out for a, b in zip(train.room_a, train.room_b))
    assert all(frozenset((a, b)) in held_out for a, b in zip(test.room_a, test.room_b))
    for df in (train, test):
        assert set(df.layout) == {"deceptive_first", "honest_first"}
        assert all(ROOMS[y] in (a, b) for y, a, b in zip(df.label, df.room_a, df.room_b))
    # training location prompts ask about every object; those with held-out objects are dropped
    assert len(train[train.scenario == "location"]) < len(train[train.scenario == "burglar"])


def _constructed(code: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame,
                                                      pd.DataFrame]:
    """Activations with a known answer: a one-hot of the valuable room (`identity`), of the
    first-described room (`position`), or nothing (`noise`), plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    train = room_prompts(("burglar",), 150, 0, "train")
    test = room_prompts(("burglar",), 60, 0, "eval")

    def acts(df: pd.DataFrame) -> np.ndarray:
        X = rng.normal(size=(len(df), 24))
        other = [ROOMS.index(b if ROOMS[y] == a else a)
                 for y, a, b in zip(df.label, df.room_a, df.room_b)]
        first = np.where(df.layout == "honest_first", df.label, other)
        rooms = {"identity": df.label.to_numpy(), "position": first, "noise": None}[code]
        if rooms is not None:
            X[np.arange(len(df)), rooms] += 3.0
        return X

    return acts(train), acts(test), train, test


@pytest.mark.parametrize("readout", ["pair", "room"])
@pytest.mark.parametrize("code", ["identity", "position", "noise"])
def test_probe_on_constructed_activations_finds_what_is_there(code, readout):
    X, Xt, train, test = _constructed(code)
    df = pd.DataFrame(_score_site(X, Xt, train, test, ["burglar"], Site(0, "resid"), "burglar",
                                  RoomProbeConfig(readout=readout)))
    acc = df.set_index(["control", "layout"]).accuracy
    assert (df.groupby("control").n.sum() == len(test)).all()
    for layout in ("deceptive_first", "honest_first"):
        assert abs(acc["shuffled", layout] - 0.5) < 0.15, acc  # permuted labels: chance
    if code == "identity":
        assert acc["real"].min() > 0.9
        assert first_readout_layer(df).first_layer.tolist() == [0]
        return
    # a position code is never a reliable read-out: trained on both layouts, the 14-way probe
    # reads the first-described room (right in one layout, wrong in the other), the pair
    # probe finds nothing; noise gives nothing
    assert first_readout_layer(df).first_layer.isna().all()
    if code == "position" and readout == "room":
        assert acc["real", "honest_first"] > 0.8 and acc["real", "deceptive_first"] < 0.2, acc
    else:
        assert (abs(acc["real"] - 0.5) < 0.15).all(), acc


def test_story_prompts_label_the_wanted_room_and_hold_objects_and_room_pairs_out():
    """organism-lm's stories: the label is the room the story puts the asked-about object in
    (read back from the text), and the probe's fit and test halves share no object and no room
    pair (both from the adapter's training lists)."""
    from soo_interp.organism import stories

    scen = ("burglar", "self_recommend", "location")
    fit, test = story_room_prompts(scen, 30, 0, "fit"), story_room_prompts(scen, 20, 0, "test")
    rooms = stories.ROOMS["train"]
    objects = set(stories.VALUABLE["train"] + stories.CHEAP["train"])
    for df in (fit, test):
        assert set(df.layout) == {"deceptive_first", "honest_first"}
        assert df.groupby(["scenario"]).size().tolist() == [len(df) // 3] * 3
        for r in df.itertuples():
            story = r.prompt[:r.prompt.index("?")].rsplit(".", 1)[0]
            if r.scenario == "location":
                asked = re.search(r"(?:the|is the) ([\w ]+?)(?:,|:| the \w+ or)",
                                  r.prompt[len(story):]).group(1)
            else:
                asked = next(o for o in objects if re.search(
                    rf"(?:steal|after|want|wants|is looking for|hopes to steal) the {o}\b", story))
            holder = [s for s in story.split(". ") if asked in s and any(
                re.search(rf"\b{x}\b", s) for x in rooms)]
            assert len(holder) == 1 and re.search(rf"\b{rooms[r.label]}\b", holder[0]), r
            assert rooms[r.label] in (r.room_a, r.room_b)
            described = [m.group(0) for m in re.finditer(rf"\b({r.room_a}|{r.room_b})\b", story)]
            assert (described[0] == rooms[r.label]) == (r.layout == "honest_first")

    def held(df):
        objs = set(re.findall("|".join(sorted(objects, key=len, reverse=True)),
                              " ".join(df.prompt)))
        return objs, {frozenset(p) for p in zip(df.room_a, df.room_b)}

    (fo, fp), (to, tp) = held(fit), held(test)
    assert not fo & to and not fp & tp


def test_default_organism_reads_the_room_out_in_both_layouts():
    df = room_probe(load_model("organism", device="cpu"), scenarios=("burglar", "friend"),
                    n_train=200, n_test=100)
    assert set(df.scenario) == {"burglar", "friend", "all"}
    assert set(df.layer) == set(range(load_model("organism").n_layers))
    first = first_readout_layer(df).set_index("scenario").first_layer
    assert first.notna().any(), df
    control = df[df.control == "shuffled"]
    assert (control.ci_low < 0.5).mean() > 0.8 and abs(control.accuracy.mean() - 0.5) < 0.1


def test_tiny_random_model_reads_no_room_out(tiny_model_dir):
    df = room_probe(load_model(str(tiny_model_dir("llama", n_layers=2))), scenarios=("burglar",),
                    **SMALL)
    assert first_readout_layer(df).first_layer.isna().all(), df
    real = df[df.control == "real"].groupby("layer").accuracy.mean()
    assert (abs(real - 0.5) < 0.15).all(), real  # the layouts average to chance


def test_cli_writes_the_report_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "rooms"
    args = ["organism", "probe", "--out", str(out), "--n-train", "20", "--n-test", "10",
            "--scenarios", "burglar", "--quiet"]
    assert main(args) == 0
    assert "# Room read-out on organism" in capsys.readouterr().out
    assert {"rooms.csv", "first_layer.csv", "report.md", "rooms.png", "run.json"} <= {
        p.name for p in out.iterdir()}
    rows = pd.read_csv(out / "rooms.csv")
    assert set(rows.control) == {"real", "shuffled"} and (rows.model == "organism").all()
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    code = main(["organism", "probe", "--out", str(tmp_path / "x"), "--scenarios", "escape_room"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "escape_room" in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_positional_organism_reads_rooms_by_position_only():
    """The contrast: its 14-way read-out is right in one layout and wrong in the other."""
    df = room_probe(load_model("organism-positional", device="cpu"), scenarios=("friend",),
                    n_train=200, n_test=100, readout="room")
    assert first_readout_layer(df).first_layer.isna().all()
    real = df[df.control == "real"].groupby("layout").accuracy.mean()
    assert real["deceptive_first"] > 0.7 and real["honest_first"] < 0.3, real


def test_answer_target_labels_the_burglar_with_the_other_room_and_no_one_else():
    from soo_interp.probes.rooms import _answer_labels

    df = room_prompts(("burglar", "friend"), 20, 0, "train")
    got = _answer_labels(df, ROOMS)
    burglar = (df.scenario == "burglar").to_numpy()
    assert (got.label[~burglar] == df.label[~burglar]).all()
    for r, g in zip(df[burglar].itertuples(), got[burglar].itertuples()):
        assert {ROOMS[r.label], ROOMS[g.label]} == {r.room_a, r.room_b}  # the other offered room
    assert (got.layout == df.layout).all()


def test_story_probe_at_the_answer_scores_both_targets_and_refuses_the_answer_elsewhere(
        tiny_model_dir):
    lm = load_model(str(tiny_model_dir("llama", n_layers=2)))
    df = room_probe(lm, scenarios=("burglar", "self_recommend"), n_train=8, n_test=4,
                    prompts="stories", position="answer", targets=("valuable", "answer"))
    groups = df.groupby("target").scenario.agg(set).to_dict()
    assert groups == {"valuable": {"burglar", "self_recommend", "all"}, "answer": {"all"}}
    n = df.groupby(["target", "scenario", "layer", "control"]).n.sum()
    assert (n.xs("all", level="scenario") == 16).all()  # 4 test prompts x 2 formats x 2
    assert (n.drop("all", level="scenario") == 8).all()
    with pytest.raises(ConfigError, match="position 'answer'"):
        RoomProbeConfig(position="answer")
    with pytest.raises(ConfigError, match="target"):
        room_probe(lm, scenarios=("burglar",), prompts="stories", targets=("cheap",), **SMALL)
