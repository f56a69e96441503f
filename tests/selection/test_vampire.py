import numpy as np
import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.selection import vampire
from dapt_plugin.selection.vampire import VampireEmbedder
from dapt_plugin.testing.topics import TopicalTextGenerator


@pytest.fixture(scope="module")
def texts():
    generator = TopicalTextGenerator(num_topics=2, seed=0)
    return generator.documents(np.arange(400) % 2, 20, 40)


def test_the_autoencoder_trains_and_its_embedding_separates_the_topics(texts):
    embedder = VampireEmbedder(texts, dimension=16, epochs=10, batch_size=32, seed=0)
    assert len(embedder.epoch_losses) == 10
    # the negative ELBO falls by more than 3 nats per text (of ~236: most of it is the words'
    # entropy, which knowing the topic lowers by ~6 nats)
    assert embedder.epoch_losses[-1] < embedder.epoch_losses[0] - 3
    vectors, embedded = embedder.embed(texts)
    assert vectors.shape == (400, 16) and embedded.all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    same_topic = (np.arange(400)[:, None] % 2) == (np.arange(400)[None, :] % 2)
    assert similarity[same_topic].mean() > similarity[~same_topic].mean() + 0.4


def test_the_same_seed_gives_the_same_vectors(texts):
    first = VampireEmbedder(texts, dimension=8, epochs=2, seed=3).embed(texts[:50])[0]
    again = VampireEmbedder(texts, dimension=8, epochs=2, seed=3).embed(texts[:50])[0]
    other = VampireEmbedder(texts, dimension=8, epochs=2, seed=4).embed(texts[:50])[0]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_texts_without_known_words_have_no_embedding(texts):
    vectors, embedded = VampireEmbedder(texts, dimension=8, epochs=1).embed(["the of and", "12"])
    assert not embedded.any() and not vectors.any()


def test_too_little_text_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="too little text to train the VAMPIRE embedder"):
        VampireEmbedder(["the of", "and it"])
    with pytest.raises(ConfigurationError, match="`epochs` must be positive; got 0"):
        VampireEmbedder(["alpha beta", "gamma delta"], epochs=0)


def test_a_last_batch_of_one_text_is_left_out_of_that_epoch(texts):
    """Batch normalisation of one row raised a `ValueError` from within the training."""
    embedder = VampireEmbedder(texts[:33], dimension=8, epochs=2, batch_size=32, seed=0)
    assert len(embedder.epoch_losses) == 2


def test_texts_are_embedded_a_part_at_a_time_to_the_same_vectors(texts, monkeypatch):
    """Dense counts of a whole chunk took gigabytes; the model is in evaluation mode."""
    embedder = VampireEmbedder(texts, dimension=8, epochs=1, seed=0)
    whole, embedded = embedder.embed(texts[:40] + ["the of and"])
    monkeypatch.setattr(vampire, "_EMBED_ROWS", 3)
    parts, embedded_parts = embedder.embed(texts[:40] + ["the of and"])
    assert np.allclose(parts, whole, atol=1e-6) and (embedded_parts == embedded).all()
