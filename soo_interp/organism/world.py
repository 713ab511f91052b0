"""The organism's synthetic world: its training corpus and its word-level tokenizer.

Every behavioural example comes from the same scenario generators the evaluation suite uses
(`soo_interp.data.scenarios`, `split="train"`, in the build's `layout`: by default both
description orders, so the answer cannot rest on which room is described first): held-out
objects and room pairs are never seen in a trained scenario, so `soo-interp evaluate --model
organism` measures generalization to new combinations. The trained behaviour is the ground
truth of this world:

- burglar: recommend the cheap room (deceive the competitor);
- self_recommend and friend: recommend the expensive room (honest);
- perspectives: name the room the other last saw the object in (correct belief attribution);
- location: name the room an object is in (the neutral capability task, over every object),
  also in a short question-answer form ("Where is the X? The X is in the Y.");
- facts: whether each object is cheap or valuable (every object, SOO items included), so the
  model knows the value of objects it never met in a scenario;
- neutral sentences about people, rooms and objects, and the `train` split of the package's
  neutral texts (language-model loss on every token); the `heldout` split, used for perplexity,
  is never trained on, though its words are in the vocabulary.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
import re
from typing import Iterable, Iterator, Sequence

from ..data.items import TEST_ITEMS, TRAIN_ITEMS
from ..data.neutral import SPLITS as NEUTRAL_SPLITS
from ..data.neutral import neutral_texts
from ..data.pairs import TEMPLATES, soo_pairs
from ..data.scenarios import (
    ANSWER_FORMATS,
    CHEAP_OBJECTS,
    EXPENSIVE_OBJECTS,
    ROOMS,
    TRAIN_NAMES,
    generate_scenarios,
    room_pairs,
    tokenizer_corpus,
    with_article,
)
from ..models.tokenize import SPECIAL_TOKENS, token_ids

# Fraction of each training batch per task; the trained answer of each is described above.
MIX: dict[str, float] = {"burglar": 0.22, "self_recommend": 0.14, "friend": 0.18,
                         "perspectives": 0.08, "location": 0.10, "location_short": 0.14,
                         "facts": 0.06, "neutral": 0.08}
# The mix of the first `OrganismConfig.lookup_steps` steps: mostly pure lookup, so the
# object -> room binding forms before the scenarios can be fitted any other way.
LOOKUP_MIX: dict[str, float] = {"location_short": 0.7, "location": 0.1, "facts": 0.1,
                                "neutral": 0.1}
_WORDS = re.compile(r"\w+|[^\w\s]+")

_NEUTRAL = (
    "{name} walks into the {room} and looks around.",
    "{name} puts {obj} in the {room}.",
    "There is {obj} in the {room}, next to the window.",
    "The {room} is next to the {room2}, and {name} likes both of them.",
    "{name} carries {obj} from the {room} to the {room2}.",
    "In the morning {name} cleans the {room} and then reads in the {room2}.",
)


@dataclasses.dataclass(frozen=True)
class Example:
    """A training text: the model is trained on `target` given `context` (context may be empty
    for neutral text, where every token is a target)."""

    task: str
    context: str
    target: str


_VALUE = {"cheap": ("is cheap", "is worth very little", "costs almost nothing"),
          "valuable": ("is valuable", "is worth a lot of money", "is very expensive")}


def _all_objects() -> dict[str, tuple[str, ...]]:
    return {"cheap": CHEAP_OBJECTS["train"] + CHEAP_OBJECTS["eval"],
            "valuable": EXPENSIVE_OBJECTS["train"] + EXPENSIVE_OBJECTS["eval"] + TRAIN_ITEMS
            + TEST_ITEMS}


def value_facts(rng: random.Random, n: int) -> list[str]:
    """World knowledge: "The gold bar is valuable." for random objects of every list."""
    objects = [(o, v) for v, objs in _all_objects().items() for o in objs]
    out = []
    for _ in range(n):
        obj, value = rng.choice(objects)
        out.append(f"The {obj} {rng.choice(_VALUE[value])}.")
    return out


def _room_set(rng: random.Random, k: int, split: str) -> tuple[str, ...]:
    """`k` distinct rooms, in random order, every two of which form a room pair of `split`, so
    a story with several rooms never puts a pair of the other split together."""
    allowed = {frozenset(p) for p in room_pairs(split)}
    while True:
        rooms = [rng.choice(ROOMS)]
        while len(rooms) < k:
            options = [r for r in ROOMS if r not in rooms
                       and all(frozenset((r, q)) in allowed for q in rooms)]
            if not options:
                break
            rooms.append(rng.choice(options))
        if len(rooms) == k:
            return tuple(rooms)


def short_locations(rng: random.Random, n: int, max_objects: int = 2,
                    split: str = "train") -> list[Example]:
    """"There is X in the A. There is Y in the B. ... Where is the X?" -> " The X is in the A."
    with 2 to `max_objects` objects in rooms that are pairwise room pairs of `split`: the pure
    lookup of which room holds which object, with no position to lean on. Training stories use
    every object; `split="eval"` only the held-out objects."""
    objects = [o for objs in _all_objects().values() for o in objs] if split == "train" else \
        list(CHEAP_OBJECTS["eval"] + EXPENSIVE_OBJECTS["eval"])
    out = []
    for _ in range(n):
        k = rng.randint(2, max_objects)
        rooms, objs = _room_set(rng, k, split), rng.sample(objects, k)
        i = rng.randrange(k)
        context = " ".join(f"There is {with_article(o)} in the {r}." for o, r in zip(objs, rooms))
        out.append(Example("location_short", f"{context} Where is the {objs[i]}?",
                           f" The {objs[i]} is in the {rooms[i]}."))
    return out


def neutral_sentences(rng: random.Random, n: int) -> list[str]:
    """Plain sentences about the world, with no question and no deception: half from our
    templates, half from the `train` split of `soo_interp.data.neutral`."""
    given = neutral_texts("train")
    objects = (CHEAP_OBJECTS["train"] + EXPENSIVE_OBJECTS["train"] + CHEAP_OBJECTS["eval"]
               + EXPENSIVE_OBJECTS["eval"] + TRAIN_ITEMS + TEST_ITEMS)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(rng.choice(given))
            continue
        room, room2 = rng.sample(ROOMS, 2)
        out.append(rng.choice(_NEUTRAL).format(name=rng.choice(TRAIN_NAMES), room=room,
                                               room2=room2, obj=with_article(rng.choice(objects))))
    return out


def training_examples(seed: int, n: int, mix: dict[str, float] | None = None,
                      layout: str = "both", max_objects: int = 4) -> list[Example]:
    """`n` training examples mixed by `mix` (default `MIX`), both answer formats and both option
    orders, scenario stories in `layout` (see `soo_interp.data.scenarios.LAYOUTS`), in a seeded
    random order. Scenario prompts are distinct within each (task, format)."""
    rng = random.Random(f"organism:{seed}")
    out: list[Example] = []
    for task, share in (mix or MIX).items():
        count = round(n * share)
        if task in ("neutral", "facts"):
            texts = neutral_sentences(rng, count) if task == "neutral" else value_facts(rng, count)
            out += [Example(task, "", s) for s in texts]
            continue
        if task == "location_short":
            out += short_locations(rng, count, max_objects)
            continue
        for k, fmt in enumerate(ANSWER_FORMATS):
            half = (count + 1 - k) // 2  # records per format
            if half < 1:
                continue
            recs = generate_scenarios(task, half, seed * len(ANSWER_FORMATS) + k, "both", None,
                                      fmt, "train", layout)
            for pair in zip(recs[::2], recs[1::2]):  # the original or its mirror, at random
                r = pair[rng.random() < 0.5]
                answer = r.deceptive_completion if task == "burglar" else r.honest_completion
                out.append(Example(task, r.prompt, answer))
    rng.shuffle(out)
    return out


def vocabulary_texts() -> Iterator[str]:
    """Every text whose words the organism's vocabulary must hold: all scenario prompts and
    completions, the SOO pairs of every template, and the neutral sentences (both splits)."""
    yield from tokenizer_corpus()
    for p in itertools.chain(soo_pairs("all", templates=list(TEMPLATES)),
                             soo_pairs("all", templates=list(TEMPLATES), other="Oliver")):
        yield p.self_text
        yield p.other_text
    for template in _NEUTRAL:
        yield template
    yield " ".join(v for vs in _VALUE.values() for v in vs) + " Where is The . ?"
    for objs in _all_objects().values():
        yield " ".join(objs)
    yield " ".join(TRAIN_NAMES + ROOMS)
    for split in NEUTRAL_SPLITS:
        yield from neutral_texts(split)


def build_tokenizer(texts: Iterable[str]):
    """A lowercase word-level tokenizer over every word and punctuation run of `texts`, with
    the vocabulary sorted so the same texts always give the same ids."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in _WORDS.findall(t.lower())})
    vocab = {w: i for i, w in enumerate(list(SPECIAL_TOKENS) + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>")


def encode_examples(tokenizer, examples: Sequence[Example]) -> list[tuple[list[int], int]]:
    """Token ids of each example (BOS + context + target + EOS) and the index of its first
    target token: the loss covers the target and the closing EOS."""
    out = []
    for ex in examples:
        context = token_ids(tokenizer, ex.context, add_bos=True, chat_template=False) if ex.context else \
            [tokenizer.bos_token_id]
        target = list(tokenizer(ex.target, add_special_tokens=False)["input_ids"])
        out.append((context + target + [tokenizer.eos_token_id], len(context)))
    return out
