import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertModel

from dapt_plugin.nn.encoder_pooler import checkpoint_has_pooler, checkpoint_pooler
from tests.conftest import SMALL, tiny_encoder


def test_the_pooler_of_a_checkpoint_is_read_in_the_masked_lms_names(tmp_path):
    base = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))  # an encoder, with its pooler
    assert checkpoint_has_pooler(str(base)) is True
    masked_lm = AutoModelForMaskedLM.from_pretrained(base)
    pooler = checkpoint_pooler(masked_lm, str(base))
    weights = BertModel.from_pretrained(base).state_dict()
    assert set(pooler) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    assert all(
        torch.equal(pooler[f"bert.{name}"], weights[name]) for name in weights if "pooler" in name
    )


def test_a_checkpoint_without_a_pooler_is_told_from_its_weight_names_without_loading_it(
    tiny_model, tmp_path, monkeypatch
):
    masked_lm = AutoModelForMaskedLM.from_pretrained(tiny_model)  # saved without a pooler
    assert checkpoint_has_pooler(str(tiny_model)) is False

    def loaded(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded")

    monkeypatch.setattr(type(masked_lm.base_model), "from_pretrained", loaded)
    assert checkpoint_pooler(masked_lm, str(tiny_model)) == {}
    (tmp_path / "config.json").write_text((tiny_model / "config.json").read_text())
    assert checkpoint_has_pooler(str(tmp_path)) is None  # no weight files to tell
