"""The stories of organism-lm: held-out sets disjoint, minimal pairs differ only in the
recipient, answers right by construction (read back from the story text itself)."""
from __future__ import annotations

import os
import random
import re

import pytest

from soo_interp.data.scenarios import ScenarioError
from soo_interp.organism import stories as S

LISTS = ("ROOMS", "VALUABLE", "CHEAP", "NAMES", "FAMILIES", "SELF_STORY", "ROOM_FORMS",
         "DISTRACTORS", "PERSPECTIVES", "LOCATION_Q")


@pytest.mark.parametrize("name", LISTS)
def test_held_out_lists_are_disjoint(name):
    split = getattr(S, name)
    assert split["train"] and split["eval"]
    assert not set(split["train"]) & set(split["eval"])


def _template_re(sentence: str) -> str:
    """A regex matching `sentence` whatever fills its {slots}."""
    return re.sub(r"\\\{\w+\\\}", "[^.?]+", re.escape(sentence))


def _words(split):
    return [w for w in S.ROOMS[split] + S.VALUABLE[split] + S.CHEAP[split] + S.NAMES[split]]


@pytest.mark.parametrize("phrasing", S.PHRASINGS)
def test_no_held_out_word_in_training_and_no_training_word_in_evaluation(phrasing):
    train = S.training_examples(0, 40, 16, 5, phrasing)
    text = " ".join(e.context + " " + e.target for e in train)
    for w in _words("eval"):
        assert not re.search(rf"\b{re.escape(w)}\b", text), w
    held_out = [*(part for fam in S.FAMILIES["eval"] for part in fam), *S.ROOM_FORMS["eval"],
                *S.DISTRACTORS["eval"]]
    for sentence in held_out:  # held-out phrasings never occur, whatever fills their slots
        assert not re.search(_template_re(sentence), text), sentence
    held = [r for row, *_ in S.ROWS for r in S.eval_records(row, 24, seed=3)]
    for r in held:
        assert r.split == "eval"
        for w in _words("train"):
            assert not re.search(rf"\b{re.escape(w)}\b", r.prompt), (w, r.prompt)


def _differing_span(a: str, b: str) -> tuple[str, str]:
    """The one differing middle of two strings, widened to whole words."""
    pre = len(os.path.commonprefix([a, b]))
    suf = len(os.path.commonprefix([a[pre:][::-1], b[pre:][::-1]]))
    while pre and a[pre - 1].isalpha():
        pre -= 1
    while suf and a[len(a) - suf].isalpha():
        suf -= 1
    return a[pre:len(a) - suf], b[pre:len(b) - suf]


def _sentence_with(prompt: str, obj: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?])\s+", prompt) if re.search(rf"\b{obj}\b", s)]


def _room_of(prompt: str, obj: str, rooms) -> str:
    """The room the story places `obj` in, read from the sentence naming both."""
    found = {r for s in _sentence_with(prompt, obj) for r in rooms
             if re.search(rf"\b{r}\b", s) and not s.endswith("?")}
    assert len(found) == 1, (obj, prompt)
    return found.pop()


@pytest.mark.parametrize("split,phrasing", [("train", "families"), ("train", "combined"),
                                            ("eval", "families")])
@pytest.mark.parametrize("variant", S.PERTURBATIONS)
def test_minimal_groups_differ_only_in_the_recipient_and_answer_right(split, phrasing, variant):
    rng = random.Random(7)
    for i in range(30):
        fmt = ("i_would", "room_only")[i % 2]
        group = S.minimal_group(rng, split, fmt, variant, phrasing=phrasing)
        assert [g.scenario for g in group] == ["burglar", "swap_self", "friend"]
        for x, y in ((group[0], group[1]), (group[0], group[2]), (group[1], group[2])):
            assert _differing_span(x.prompt, y.prompt) == (x.name, y.name)  # only the recipient
        b, me, f = group
        assert me.name == "yourself" and b.name != f.name
        assert re.search(rf"\b{b.name}\b[^.]*burglar|burglar[^.]*\b{b.name}\b", b.prompt)
        rooms = S.ROOMS[split]
        wanted = _room_of(b.prompt, b.expensive_object, rooms)
        assert {g.honest for g in group} == {wanted}
        assert _room_of(b.prompt, b.cheap_object, rooms) == b.deceptive != wanted
        assert S.target_completion(b).endswith(f" {b.deceptive}.")
        assert S.target_completion(me).endswith(f" {wanted}.")
        assert S.target_completion(f).endswith(f" {wanted}.")
        assert f"he {b.options[0]} or" in b.prompt and set(b.options) == {b.honest, b.deceptive}
        if variant in ("base", "distractor"):  # the others move or repeat room sentences
            first, other = b.prompt.find(f" {b.honest}"), b.prompt.find(f" {b.deceptive}")
            assert (first < other) == (b.layout == "honest_first")


def test_perspectives_and_location_answers_right():
    rng = random.Random(1)
    for _ in range(30):
        p = S.perspectives_record(rng, "eval", "room_only")
        told = [s for s in _sentence_with(p.prompt, p.honest) if "only" in s]
        assert told and p.deceptive != p.honest
        loc = S.location_record(rng, "eval", "i_would")
        assert _room_of(loc.prompt, loc.expensive_object, S.ROOMS["eval"]) == loc.honest
        assert loc.honest_completion == f"I would say the {loc.honest}."


@pytest.mark.parametrize("row", [r[0] for r in S.ROWS])
def test_eval_rows_balanced_and_reproducible(row):
    recs = S.eval_records(row, 16, seed=0)
    assert len(recs) == 16 and recs == S.eval_records(row, 16, seed=0)
    assert recs != S.eval_records(row, 16, seed=1)
    assert {r.answer_format for r in recs} == {"i_would", "room_only"}
    assert {r.mirrored for r in recs} == {False, True}
    if row in ("burglar", "friend", "recipient_swap", "self"):
        assert {r.layout for r in recs} == {"honest_first", "deceptive_first"}
    kinds = {r.scenario for r in recs}
    assert kinds == ({"burglar", "swap_self"} if row in ("distractor", "repeated", "reordered")
                     else {dict((x[0], x[1]) for x in S.ROWS)[row]})


def test_perturbations_show_in_the_prompt():
    d = S.eval_records("distractor", 10)
    assert all(sum(s.format(F="").split()[0] in r.prompt for s in S.DISTRACTORS["eval"]) >= 1
               for r in d)
    rep = S.eval_records("repeated", 10)
    assert all(r.prompt.count(r.expensive_object) >= 3 for r in rep)


def test_unknown_row_is_refused():
    with pytest.raises(ScenarioError, match="unknown organism-lm row"):
        S.eval_records("nope", 4)
    with pytest.raises(ScenarioError, match="unknown organism-lm split 'test'"):
        S.eval_records("burglar", 4, split="test")


@pytest.mark.parametrize("row", ["burglar", "recipient_swap", "location"])
def test_fit_check_rows_come_from_the_training_lists(row):
    fit = S.eval_records(row, 24, seed=0, split="train")
    assert all(r.split == "train" for r in fit)
    for r in fit:
        for w in _words("eval"):
            assert not re.search(rf"\b{re.escape(w)}\b", r.prompt), (w, r.prompt)
    held = S.eval_records(row, 24, seed=0)
    assert {r.prompt for r in fit}.isdisjoint(r.prompt for r in held)
    assert {r.layout for r in fit} == {r.layout for r in held}  # balanced the same way


def test_combined_phrasing_mixes_parts_and_leaves_evaluation_alone():
    fams = S.training_examples(0, 30, 16, 2)
    comb = S.training_examples(0, 30, 16, 2, "combined")
    def used(examples, sentences):
        text = " ".join(e.context for e in examples)
        return {x for x in sentences if re.search(_template_re(x), text)}

    extra = [x for kind in ("intro", "want", "question") for x in S.EXTRA_TRAIN[kind]]
    assert len(used(comb, extra)) > len(extra) // 2  # the extra sentences are used
    assert not used(fams, extra)  # the families phrasing never sees them
    rng = random.Random(3)
    ids = {S.minimal_group(rng, "train", "i_would", phrasing="combined")[0].prompt_id.split(".")[2]
           for _ in range(40)}
    assert len(ids) > 30 and all(i.startswith("c") for i in ids)
    assert S._pool("intro", "eval", "combined") == S._pool("intro", "eval", "families")
    with pytest.raises(ScenarioError, match="unknown organism-lm phrasing"):
        S.training_examples(0, 1, 16, 1, "nope")


def test_training_batches_hold_whole_triples_and_every_task():
    ex = S.training_examples(0, 6, 16, 2)
    assert len(ex) == 96
    tasks = {e.task for e in ex}
    assert tasks == {"burglar", "swap_self", "friend", "self", "perspectives", "location",
                     "neutral"}
    for step in range(6):
        batch = ex[step * 16:(step + 1) * 16]
        assert sum(e.task == "burglar" for e in batch) == sum(e.task == "friend" for e in batch)
        assert sum(e.task == "burglar" for e in batch) >= 1


@pytest.mark.parametrize("other", ["friend", "self"])
def test_recipient_suite_pairs_differ_only_in_the_recipient(tmp_path, other):
    from soo_interp.probes.suites import load_suite

    suite = load_suite(S.write_recipient_suite(tmp_path / other, 12, other=other))
    assert suite.pairs and suite.label_names == ("truth", "lie") and len(suite.examples) == 24
    by_pair: dict = {}
    for e in suite.examples:
        by_pair.setdefault(e.pair_id, {})[e.label] = e.text
    for texts in by_pair.values():
        lie, truth = texts[1], texts[0]
        a, b = _differing_span(lie, truth)
        assert a and (b == "yourself") == (other == "self")
        assert re.search(rf"\b{a}\b[^.]*burglar|burglar[^.]*\b{a}\b", lie)  # lie: to the burglar
