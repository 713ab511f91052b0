"""Scenario generators: determinism, mirroring, splits, wording edits and bad input."""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import pytest

from soo_interp.data.items import TEST_ITEMS, TRAIN_ITEMS, head_noun
from soo_interp.data.scenarios import (
    CHEAP_OBJECTS,
    EXPENSIVE_OBJECTS,
    GENERALIZATION_VARIANTS,
    ROOMS,
    SCENARIOS,
    VARIANTS,
    ScenarioError,
    generate_scenarios,
    room_pairs,
    scenario_size,
    tokenizer_corpus,
)
from soo_interp.errors import SooError

WORD = re.compile(r"[A-Za-z]+")


def _all(split="eval", n=40, seed=0, fmt="i_would", mirrored="both", layout="both"):
    return [r for s in SCENARIOS
            for r in generate_scenarios(s, n, seed, mirrored, None, fmt, split, layout)]


def test_same_seed_same_records_and_different_seed_different_prompts():
    for s in SCENARIOS:
        a = generate_scenarios(s, 20, seed=3, mirrored="both")
        assert a == generate_scenarios(s, 20, seed=3, mirrored="both")
        b = generate_scenarios(s, 20, seed=4, mirrored="both")
        assert [r.prompt for r in a] != [r.prompt for r in b]
        assert len({r.prompt for r in a}) == len(a)  # distinct prompts
        assert len({r.prompt_id for r in a}) == len(a)


def test_records_do_not_depend_on_hash_order():
    code = ("import json; from soo_interp.data.scenarios import generate_scenarios as g;"
            "print(json.dumps([r.to_dict() for r in g('generalization', 5, 7, 'both')]))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": h, "PATH": ""}).stdout for h in ("1", "2")]
    assert outs[0] == outs[1]
    assert json.loads(outs[0])[0]["scenario"] == "generalization"


def test_mirrored_swaps_exactly_the_option_order():
    for s in SCENARIOS:
        recs = generate_scenarios(s, 10, seed=1, mirrored="both", answer_format="room_only")
        for o, m in zip(recs[::2], recs[1::2]):
            assert (o.mirrored, m.mirrored) == (False, True)
            assert o.options == (o.deceptive, o.honest) and m.options == o.options[::-1]
            wo, wm = o.prompt.split(), m.prompt.split()
            assert len(wo) == len(wm)
            diff = [i for i, (x, y) in enumerate(zip(wo, wm)) if x != y]
            assert len(diff) == 2, (o.prompt, m.prompt)
            a, b = diff
            assert (wo[a], wo[b].rstrip("?")) == o.options
            assert (wm[a], wm[b].rstrip("?")) == m.options
            assert wo[a + 1:b - 1] == ["or"]
            same = {k: v for k, v in o.to_dict().items() if k not in ("prompt", "options",
                                                                     "mirrored", "prompt_id")}
            assert same == {k: v for k, v in m.to_dict().items() if k in same}


def test_mirrored_flags():
    assert all(not r.mirrored for r in generate_scenarios("burglar", 5))
    assert all(r.mirrored for r in generate_scenarios("burglar", 5, mirrored=True))
    assert len(generate_scenarios("burglar", 5, mirrored="both")) == 10


def test_honest_and_deceptive_answers_match_the_story():
    for r in _all(n=30):
        assert {r.honest, r.deceptive} == set(r.options) and r.honest != r.deceptive
        assert r.honest in ROOMS and r.deceptive in ROOMS
        if r.scenario == "perspectives":  # the other last saw it in the honest room
            assert f"mentions only the {r.honest} to you" in r.prompt
            assert f"You find an {r.expensive_object} in the {r.deceptive}" in r.prompt or \
                f"You find a {r.expensive_object} in the {r.deceptive}" in r.prompt
        elif r.scenario == "escape_room":
            assert f"There is the key to the exit in the {r.honest}." in r.prompt
            assert re.search(rf"There is an? {r.cheap_object} in the {r.deceptive}\.", r.prompt)
        elif r.scenario == "location":
            asked = re.search(r"say where the ([a-z ]+) is,", r.prompt).group(1)
            assert re.search(rf"There is an? {asked} in the {r.honest}\.", r.prompt)
            other = ({r.cheap_object, r.expensive_object} - {asked}).pop()
            assert re.search(rf"There is an? {other} in the {r.deceptive}\.", r.prompt)
        else:  # the expensive object (the thing the other wants) is in the honest room
            assert re.search(rf"There is (the treasure, )?an? {r.expensive_object},? in the "
                             rf"{r.honest}\.", r.prompt)
            assert re.search(rf"There is an? {r.cheap_object} in the {r.deceptive}\.", r.prompt)


def test_completions_follow_the_answer_format():
    for r in generate_scenarios("burglar", 5, answer_format="i_would"):
        assert r.prompt.endswith("Start your answer with 'I would'.")
        assert r.honest_completion == f" I would point out the {r.honest}"
        assert r.deceptive_completion == f" I would point out the {r.deceptive}"
    for r in generate_scenarios("generalization", 5, variants=["action"]):
        assert r.honest_completion == f" I would mention the {r.honest}"
    for r in generate_scenarios("perspectives", 5, answer_format="room_only"):
        assert r.prompt.endswith("Answer with the name of the room only.")
        assert (r.honest_completion, r.deceptive_completion) == (f" {r.honest}", f" {r.deceptive}")


def test_generalization_variants_apply_exactly_their_edits():
    base = generate_scenarios("burglar", 30, seed=2)
    assert all("Bob" in r.prompt and " steal " in r.prompt and "recommend" in r.prompt
               and "point out" in r.prompt for r in base)
    recs = generate_scenarios("generalization", 30, seed=2)
    assert {r.variant for r in recs} == set(GENERALIZATION_VARIANTS) and len(recs) == 7 * 30
    for r in recs:
        edits = {"name", "objective", "action"} if r.variant == "all" else set(r.variant.split("+"))
        assert ("Oliver" in r.prompt and "Bob" not in r.prompt) == ("name" in edits)
        assert r.name == ("Oliver" if "name" in edits else "Bob")
        assert ("steal" not in r.prompt and " get " in r.prompt) == ("objective" in edits)
        assert ("recommend" not in r.prompt and "point out" not in r.prompt
                and "mention one room" in r.prompt) == ("action" in edits)
    # a variant's prompt differs from the burglar prompt with the same index only by its edits
    one = {r.prompt_id.split(".")[5]: r for r in generate_scenarios("generalization", 3, 5,
                                                                    variants=["objective"])}
    same_space = {r.prompt_id.split(".")[5]: r
                  for r in generate_scenarios("burglar", scenario_size("burglar"), 0)}
    for k, r in one.items():
        assert r.prompt.replace(" get ", " steal ").replace("to get it", "to steal it") == \
            same_space[k].prompt


def test_honesty_prompt_is_burglar_with_a_prefix():
    hp = generate_scenarios("honesty_prompt", 10, seed=4)
    bg = {r.prompt_id.split(".")[5]: r
          for r in generate_scenarios("burglar", scenario_size("burglar"))}
    for r in hp:
        prefix = "Please be honest with Bob in the following situation. "
        assert r.prompt == prefix + bg[r.prompt_id.split(".")[5]].prompt


def test_evaluation_objects_are_not_soo_items_and_contain_no_room_word():
    soo_heads = {head_noun(i) for i in TRAIN_ITEMS + TEST_ITEMS}
    objects = [o for d in (CHEAP_OBJECTS, EXPENSIVE_OBJECTS) for s in d for o in d[s]]
    assert len(objects) == len(set(objects))
    assert not {head_noun(o) for o in objects} & soo_heads
    assert not {o for o in objects} & set(TRAIN_ITEMS + TEST_ITEMS)
    for o in objects:
        for room in ROOMS + ("room",):
            assert room not in o.lower(), (o, room)
    # the same holds for every object a generated record carries
    used = {x for r in _all(n=50) for x in (r.cheap_object, r.expensive_object) if x and x != "key"}
    assert used and not {head_noun(o) for o in used} & soo_heads


def test_train_and_eval_splits_are_disjoint():
    ev, tr = set(room_pairs("eval")), set(room_pairs("train"))
    unordered = lambda ps: {frozenset(p) for p in ps}  # noqa: E731
    assert not unordered(ev) & unordered(tr)
    assert len(ev) + len(tr) == len(ROOMS) * (len(ROOMS) - 1)
    for rooms in (ev, tr):  # every room appears in both roles in both splits
        assert {a for a, _ in rooms} == set(ROOMS) == {b for _, b in rooms}
    for s in ("cheap", "expensive"):
        d = CHEAP_OBJECTS if s == "cheap" else EXPENSIVE_OBJECTS
        assert not {head_noun(o) for o in d["train"]} & {head_noun(o) for o in d["eval"]}
    eval_objects = set(CHEAP_OBJECTS["eval"] + EXPENSIVE_OBJECTS["eval"])
    for r in _all(split="train", n=200):
        assert frozenset((r.honest, r.deceptive)) not in unordered(ev)
        if r.scenario != "location":  # location teaches every object's word (documented)
            assert not eval_objects & {r.cheap_object, r.expensive_object}
            assert not any(o in r.prompt for o in eval_objects)
    for r in _all(split="eval", n=50):
        assert (r.deceptive, r.honest) in ev
        assert not set(CHEAP_OBJECTS["train"] + EXPENSIVE_OBJECTS["train"]) & \
            {r.cheap_object, r.expensive_object}


def test_train_names_play_both_roles():
    names = lambda s: {r.name for r in generate_scenarios(s, 400, split="train")}  # noqa: E731
    assert names("burglar") == names("friend") >= {"Bob", "Oliver"}
    assert len(names("burglar")) >= 4


def test_bad_input_errors_name_the_fix():
    with pytest.raises(ScenarioError, match="burglar.*perspectives"):
        generate_scenarios("heist", 5)
    with pytest.raises(ScenarioError, match="name, objective, action"):
        generate_scenarios("generalization", 5, variants=["colour"])
    size = scenario_size("escape_room")
    with pytest.raises(SooError, match=f"use n <= {size}"):
        generate_scenarios("escape_room", size + 1)
    assert len(generate_scenarios("escape_room", size)) == size
    with pytest.raises(ScenarioError, match="i_would, room_only"):
        generate_scenarios("burglar", 5, answer_format="yes")
    with pytest.raises(ScenarioError, match="train, eval"):
        generate_scenarios("burglar", 5, split="test")
    with pytest.raises(ScenarioError, match="'both'"):
        generate_scenarios("burglar", 5, mirrored="yes")
    with pytest.raises(ScenarioError, match="positive"):
        generate_scenarios("burglar", 0)


def test_tokenizer_corpus_covers_every_word():
    vocab = {w for t in tokenizer_corpus() for w in WORD.findall(t)}
    for split, fmt, seed in itertools.product(("train", "eval"), ("i_would", "room_only"), (0, 9)):
        for r in _all(split, n=25, seed=seed, fmt=fmt):
            for t in (r.prompt, r.honest_completion, r.deceptive_completion):
                assert set(WORD.findall(t)) <= vocab, t


def test_to_dict_round_trips_through_json():
    r = generate_scenarios("treasure_hunt", 1, mirrored=True)[0]
    d = json.loads(json.dumps(r.to_dict()))
    assert d["options"] == list(r.options) and d["mirrored"] is True and d["scenario"] == "treasure_hunt"
    assert set(VARIANTS) == set(SCENARIOS)


def test_layouts_control_the_description_order():
    def first_room(r):
        return re.search(r"There is [^.]*? in the (\w+)\.", r.prompt).group(1)

    for s in ("burglar", "friend", "self_recommend", "treasure_hunt", "escape_room"):
        paper = generate_scenarios(s, 30, seed=2)
        assert all(r.layout == "deceptive_first" and first_room(r) == r.deceptive for r in paper)
        swapped = generate_scenarios(s, 30, seed=2, layout="honest_first")
        assert all(first_room(r) == r.honest for r in swapped)
        mixed = generate_scenarios(s, 60, seed=2, layout="both")
        assert {r.layout for r in mixed} == {"deceptive_first", "honest_first"}
        assert scenario_size(s, layout="both") == 2 * scenario_size(s)
    with pytest.raises(ScenarioError, match="paper, both, honest_first"):
        generate_scenarios("burglar", 5, layout="random")


def test_mirrored_both_read_from_a_file_is_accepted_and_integers_are_not():
    import pytest

    from soo_interp.data.scenarios import ScenarioError, generate_scenarios

    both = "".join(["bo", "th"])  # a fresh string object, as YAML or argparse give
    assert len(generate_scenarios("burglar", 3, mirrored=both)) == 6
    with pytest.raises(ScenarioError, match="mirrored must be"):
        generate_scenarios("burglar", 3, mirrored=1)


def test_evaluation_blocks_are_disjoint_and_block_0_is_unchanged():
    from soo_interp.data.scenarios import ScenarioError, generate_scenarios

    plain = generate_scenarios("burglar", 50, seed=3)
    blocks = [generate_scenarios("burglar", 50, seed=3, block=k) for k in range(3)]
    assert [r.prompt for r in blocks[0]] == [r.prompt for r in plain]
    seen = [set(r.prompt for r in b) for b in blocks]
    assert all(len(s) == 50 for s in seen)
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    with pytest.raises(ScenarioError, match="block"):
        generate_scenarios("perspectives", 400, block=1)
