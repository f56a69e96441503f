import pytest

from dapt_plugin.selection.units import iter_units, split_sentences


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Cells were grown (see Fig. 2). We found that e.g. the channel opens! Did it? Yes.",
            [
                "Cells were grown (see Fig. 2).",
                "We found that e.g. the channel opens!",
                "Did it?",
                "Yes.",
            ],
        ),
        ("Smith et al. found it. J. Smith agreed.", ["Smith et al. found it.", "J. Smith agreed."]),
        ("The dose was 3.5 mg. 25 patients died.", ["The dose was 3.5 mg.", "25 patients died."]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        # pre-tokenized text: a full stop standing alone ends a sentence whatever follows
        ("the channel opens . we found it . ok", ["the channel opens .", "we found it .", "ok"]),
        # a lowercase start after a word's full stop is not a boundary; a blank line is
        (
            "It works in vivo. mRNA rises.\n\nNew part",
            ["It works in vivo. mRNA rises.", "New part"],
        ),
        ("  \n ", []),
    ],
)
def test_sentences_are_split_by_the_documented_rule(text, sentences):
    assert split_sentences(text) == sentences


def test_units_are_numbered_across_documents(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("One. Two.\n\nThree here.\n")
    assert list(iter_units([str(corpus)], "text", "sentence")) == [
        ("One.", 0),
        ("Two.", 1),
        ("Three here.", 2),
    ]
    assert list(iter_units([str(corpus)], "text", "document")) == [
        ("One. Two.", 0),
        ("Three here.", 1),
    ]
