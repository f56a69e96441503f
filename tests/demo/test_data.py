"""`generate_demo`: the data of `make demo` has the properties its effect rests on."""

import json
import re

import pytest

from dapt_plugin.demo.data import _CLASS_WORDS, generate_demo, make_compounds
from dapt_plugin.testing.tiny_model import train_bpe_tokenizer

COMPOUND = re.compile(r"\bthe drug (\w+)")
CLASS_WORDS = {word: label for label, words in _CLASS_WORDS.items() for word in words}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo_data"))


def lines(path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return [{"text": line} for line in path.read_text().splitlines()]


def compound_of(text):
    match = COMPOUND.search(text)
    return match and match.group(1)


def test_dev_and_test_name_only_compounds_never_labelled_in_training(demo):
    compounds = make_compounds(40)
    train = {compound_of(row["text"]) for row in lines(demo["train"])}
    held_out = {compound_of(row["text"]) for split in ("dev", "test") for row in lines(demo[split])}
    assert len(train) == len(held_out) == 20 and not train & held_out
    for split in ("train", "dev", "test"):
        rows = lines(demo[split])
        assert all(row["label"] == compounds[compound_of(row["text"])] for row in rows)
        assert 0.35 < sum(row["label"] == "inhibitor" for row in rows) / len(rows) < 0.65


def test_only_domain_and_unlabelled_text_tell_a_compounds_class(demo):
    """Labels can be inferred only from what DAPT or TAPT reads, never from the task's own words."""
    compounds = make_compounds(40)
    for name in ("general", "train", "dev", "test"):
        assert not any(
            CLASS_WORDS.keys() & set(row["text"].split()) for row in lines(demo[name])
        ), name
    for name in ("domain", "unlabeled"):
        for row in lines(demo[name]):
            words = [CLASS_WORDS[word] for word in row["text"].split() if word in CLASS_WORDS]
            assert words == [compounds[compound_of(row["text"])]], row


def test_a_compound_is_the_same_token_in_every_file(demo, tmp_path):
    """Byte-level BPE tokenizes a line's first word differently; no compound starts a line."""
    tokenizer = train_bpe_tokenizer(
        [demo[name] for name in ("general", "domain", "train", "unlabeled")], tmp_path
    )
    compound_tokens = {"Ġ" + name for name in make_compounds(40)}
    for name in ("general", "domain", "train", "dev", "test", "unlabeled"):
        for row in lines(demo[name]):
            compound = compound_of(row["text"])
            if compound:
                assert "Ġ" + compound in tokenizer.tokenize(row["text"]), row
            assert row["text"].split()[0] not in {token[1:] for token in compound_tokens}


def test_same_seed_same_data(demo, tmp_path):
    again = generate_demo(tmp_path)
    assert all(again[name].read_bytes() == path.read_bytes() for name, path in demo.items())
