"""`TopicalTextGenerator`: documents on numbered topics, of drawn or given lengths."""

import numpy as np
import pytest

from dapt_plugin.testing.topics import TopicalTextGenerator


def test_documents_have_the_given_lengths_and_their_topics_can_be_told_back():
    generator = TopicalTextGenerator(num_topics=3, topic_share=0.5, seed=0)
    lengths = [3, 40, 12, 25]
    documents = generator.documents([0, 1, 2, 1], lengths=lengths)
    assert [len(document.split()) for document in documents] == lengths
    assert [generator.topic_of(document) for document in documents[1:]] == [1, 2, 1]


def test_drawn_lengths_stay_within_the_bounds():
    documents = TopicalTextGenerator(seed=1).documents(np.zeros(200, dtype=int), 9, 14)
    assert {len(document.split()) for document in documents} == set(range(9, 15))


def test_a_length_per_document_is_required():
    with pytest.raises(ValueError, match="2 lengths for 3 documents"):
        TopicalTextGenerator().documents([0, 1, 0], lengths=[5, 6])
