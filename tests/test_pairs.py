import json

import pytest

from soo_interp.data.items import TEST_ITEMS, TRAIN_ITEMS, head_noun
from soo_interp.data.pairs import TEMPLATES, load_pairs, save_pairs, soo_pairs
from soo_interp.errors import PairsError


def test_train_test_items_disjoint_by_item_and_head_noun():
    assert not set(TRAIN_ITEMS) & set(TEST_ITEMS)
    assert not {head_noun(i) for i in TRAIN_ITEMS} & {head_noun(i) for i in TEST_ITEMS}
    assert len(TRAIN_ITEMS) + len(TEST_ITEMS) >= 52
    assert len({head_noun(i) for i in TRAIN_ITEMS}) == len(TRAIN_ITEMS)


def test_train_pairs_cycle_three_phrasings_and_test_uses_measurement_phrasing():
    train, test = soo_pairs("train"), soo_pairs("test")
    assert [p.template for p in train[:6]] == ["goal", "intend", "planning"] * 2
    assert {p.template for p in test} == {"measure"}
    assert {p.item for p in train} == set(TRAIN_ITEMS)
    assert {p.item for p in test} == set(TEST_ITEMS)
    p = test[0]
    assert p.self_text == f"You want to steal the {p.item}. If you had to recommend one room to yourself"
    assert p.other_text == f"Bob wants to steal the {p.item}. If you had to recommend one room to Bob"


def test_every_template_has_matching_word_counts():
    for s, o in TEMPLATES.values():
        assert len(s.format(item="x", other="Bob").split()) == len(o.format(item="x", other="Bob").split())


def test_pairs_round_trip_jsonl_and_csv(tmp_path):
    pairs = soo_pairs("test")[:3]
    save_pairs(pairs, tmp_path / "p.jsonl")
    assert load_pairs(tmp_path / "p.jsonl") == pairs
    (tmp_path / "p.csv").write_text("self,other,pair_id\nI go,Bob goes,a\nI sit,Bob sits,b\n")
    got = load_pairs(tmp_path / "p.csv")
    assert [(p.pair_id, p.self_text, p.other_text) for p in got] == [
        ("a", "I go", "Bob goes"), ("b", "I sit", "Bob sits")]


@pytest.mark.parametrize("content, where", [
    ('{"self": "a", "other": "b"}\n{"self": "a"\n', ":2:"),
    ('{"self": "a", "other": "b"}\n{"self": "a"}\n', ":2:"),
    ('{"self": "a", "other": ""}\n', ":1:"),
])
def test_malformed_jsonl_names_the_line(tmp_path, content, where):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(PairsError, match=where):
        load_pairs(f)


def test_empty_and_missing_files_and_duplicate_ids(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(PairsError, match="no pairs"):
        load_pairs(tmp_path / "e.jsonl")
    with pytest.raises(PairsError, match="does not exist"):
        load_pairs(tmp_path / "nope.jsonl")
    (tmp_path / "c.csv").write_text("self,bob\nx,y\n")
    with pytest.raises(PairsError, match="needs 'self' and 'other'"):
        load_pairs(tmp_path / "c.csv")
    lines = [json.dumps({"self": "a", "other": "b", "pair_id": "x"})] * 2
    (tmp_path / "d.jsonl").write_text("\n".join(lines))
    with pytest.raises(PairsError, match="appears twice"):
        load_pairs(tmp_path / "d.jsonl")


def test_pair_ids_are_kept_exactly_zero_included(tmp_path):
    f = tmp_path / "p.jsonl"
    rows = [{"pair_id": 0, "self": "I am", "other": "He is"},
            {"self": "I see", "other": "They see"}, {"pair_id": "", "self": "I go", "other": "We go"}]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    assert [p.pair_id for p in load_pairs(f)] == ["0", "pair-0001", "pair-0002"]
    c = tmp_path / "p.csv"
    c.write_text("pair_id,self,other\n0,I am,He is\n007,I was,She was\n,I see,They see\n")
    assert [p.pair_id for p in load_pairs(c)] == ["0", "007", "pair-0002"]


@pytest.mark.parametrize("line", ['{"self": NaN, "other": "Bob wants the vase"}',
                                  '{"self": 123, "other": "Bob wants the vase"}',
                                  '{"self": "You want it", "other": ["Bob"]}'])
def test_non_string_prompts_are_refused_not_measured_as_text(tmp_path, line):
    """They used to become the prompts "nan" and "123"."""
    f = tmp_path / "p.jsonl"
    f.write_text(line + "\n")
    with pytest.raises(PairsError, match=r"p.jsonl:1: '(self|other)' is .*not a prompt string"):
        load_pairs(f)


def test_python_pairs_of_the_wrong_kind_are_pairs_errors():
    from soo_interp.data.pairs import PromptPair, validate_pairs

    for bad in ("you want the vase", [("you want", "bob wants")], [PromptPair("a", 1, "bob")],
                [PromptPair("a", float("nan"), "bob")]):
        with pytest.raises(PairsError, match="PromptPair|not a non-empty string"):
            validate_pairs(bad)


def test_inputs_are_bounded_and_only_regular_files_are_read(tmp_path, monkeypatch):
    """`--pairs /dev/zero` used to read until the kernel killed it at 24 GB; a FIFO blocked."""
    import os

    with pytest.raises(PairsError, match="/dev/zero is not a regular file"):
        load_pairs("/dev/zero")
    fifo = tmp_path / "pairs.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(PairsError, match="not a regular file"):
        load_pairs(fifo)  # returns at once: a FIFO is never opened
    big = tmp_path / "big.jsonl"
    big.write_text('{"self": "You want it", "other": "Bob wants it"}\n' * 30_000)  # 1.4 MB
    monkeypatch.setenv("SOO_INTERP_MAX_INPUT_MB", "1")
    with pytest.raises(PairsError, match=r"is 1\.\d MB, over the 1 MB limit .*--max-input-mb"):
        load_pairs(big)
    monkeypatch.setenv("SOO_INTERP_MAX_INPUT_MB", "2")
    assert len(load_pairs(big)) == 30_000  # the raised limit reads it


def test_a_utf8_bom_is_accepted(tmp_path):
    """Excel's CSV starts with a BOM; it used to be refused as a header without 'self'."""
    f = tmp_path / "p.csv"
    f.write_bytes("\ufeffself,other\nYou want the vase,Bob wants the vase\n".encode("utf-8"))
    assert [(p.self_text, p.other_text) for p in load_pairs(f)] == [
        ("You want the vase", "Bob wants the vase")]


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z']+", text.lower())


def test_recipient_pairs_differ_only_in_the_recipient_and_use_no_evaluation_words():
    """Recipient-only pairs: self and other differ in "yourself" / "the burglar" alone, and no
    object, name, room or 5-word phrasing of an evaluation (the held-out lists of
    data.scenarios and of organism-lm's stories, and their generated prompts) occurs in them."""
    import re

    from soo_interp.data import scenarios
    from soo_interp.data.pairs import pair_set, recipient_pairs
    from soo_interp.organism import stories

    pairs = recipient_pairs(200) + pair_set("recipient") + pair_set("recipient", "test")
    for p in pairs:
        assert p.self_text.endswith(" to yourself") and p.other_text.endswith(" to the burglar")
        assert p.self_text.removesuffix("yourself") == p.other_text.removesuffix("the burglar")
    text = " ".join(p.self_text + " " + p.other_text + " " + p.swap_text for p in pairs).lower()
    held = [*scenarios.CHEAP_OBJECTS["eval"], *scenarios.EXPENSIVE_OBJECTS["eval"],
            scenarios.EVAL_NAME, scenarios.ALT_NAME, *scenarios.ROOMS,
            *stories.VALUABLE["eval"], *stories.CHEAP["eval"], *stories.NAMES["eval"],
            *stories.ROOMS["eval"]]
    found = [w for w in held if re.search(rf"\b{w.lower()}\b", text)]
    assert not found
    heads = {o.split()[-1] for o in [*scenarios.CHEAP_OBJECTS["eval"],
                                     *scenarios.EXPENSIVE_OBJECTS["eval"],
                                     *stories.VALUABLE["eval"], *stories.CHEAP["eval"]]}
    assert not heads & set(_words(text))  # no near-duplicate object either
    prompts = [r.prompt for s in ("burglar", "friend", "self_recommend", "perspectives",
                                  "location")
               for layout in ("paper", "both")
               for r in scenarios.generate_scenarios(s, 40, mirrored="both", layout=layout)]
    prompts += [r.prompt for row, *_ in stories.ROWS for r in stories.eval_records(row, 60)]
    grams = lambda t: {tuple(w[i:i + 5]) for w in [_words(t)] for i in range(len(w) - 4)}  # noqa: E731
    evaluation = set().union(*(grams(t) for t in prompts))
    shared = set().union(*(grams(p.other_text) | grams(p.self_text) for p in pairs)) & evaluation
    assert not shared, sorted(shared)[:5]
    assert len({p.self_text for p in pair_set("recipient")}) == 26
