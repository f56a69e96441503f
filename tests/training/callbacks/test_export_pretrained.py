import json
import os
import sys

import torch
from allennlp.commands.train import train_model_from_file
from safetensors.torch import load_file
from transformers import AutoModel, BertConfig

from dapt_plugin.data.token_cache import file_sha256
from dapt_plugin.training.model_card import render_model_card
from tests.conftest import CONFIGS, DATA, SMALL, allennlp, mlm_env, tiny_encoder


def test_every_export_carries_a_model_card_with_the_facts_of_its_run(
    tiny_model, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    env = mlm_env(
        tiny_model,
        NUM_STEPS="4",
        NUM_CHECKPOINTS="2",
        EXPORT_EVERY_STEPS="2",
        HELDOUT_PATH=str(DATA / "domain_heldout.txt"),
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        sys, "argv", ["allennlp", "train", "-r", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)]
    )
    train_model_from_file(str(CONFIGS / "dapt.jsonnet"), str(run))
    facts = json.loads((run / "exported_model" / "dapt_export.json").read_text())
    corpus = DATA / "domain.txt"
    assert facts["data"]["train"] == [
        {"path": str(corpus), "bytes": corpus.stat().st_size, "sha256": file_sha256(str(corpus))}
    ]
    assert facts["data"]["heldout"][0]["path"] == str(DATA / "domain_heldout.txt")
    training = facts["training"]
    assert (
        training["steps"] == 4
        and training["effective_batch"] == 16
        and training["learning_rate"] == 1e-3
    )
    assert training["max_length"] == 64 and training["mode"] == "document_windows"
    # 4 steps of 2 batches of 8 examples: at least 64 rows of at least 3 tokens
    assert 64 * 3 <= training["tokens_seen"] <= 64 * 64
    assert training["masking"] == {
        "mlm_probability": 0.15,
        "mask_replace_prob": 0.8,
        "random_replace_prob": 0.1,
        "whole_word_masking": False,
    }
    assert training["head_missing_weights"] == 0 and training["head_warmup_steps"] == 0
    # the variables of dapt.jsonnet that were set (TAPT_PATH, of tapt.jsonnet, is not one), then
    # the command (less `-r`: a resumed run's command is that of the run it resumes)
    given = {**env, "DAPT_PLUGIN_CACHE": os.environ["DAPT_PLUGIN_CACHE"]}
    assert facts["command"] == " ".join(
        [f"{name}={given[name]}" for name in sorted(given) if name != "TAPT_PATH"]
        + ["allennlp", "train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)]
    )
    assert facts["config"] == json.loads((run / "config.json").read_text())
    assert set(facts["versions"]) == {"dapt_plugin", "allennlp", "torch", "transformers"}
    card = (run / "exported_model" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: fill-mask\n")
    assert (
        f"| `{corpus}` | {corpus.stat().st_size:,} bytes | `{file_sha256(str(corpus))}` |" in card
    )
    assert "| optimizer steps | 4 |" in card and facts["command"] in card
    assert f"| tokens trained on (padding excluded) | {training['tokens_seen']:,} |" in card
    # a distributed run counts the primary worker's tokens only
    distributed = {**facts, "training": {**training, "workers": 2}}
    assert (
        f"| tokens trained on (padding excluded) | {training['tokens_seen']:,} (the primary "
        "worker's count times its 2 workers) |"
    ) in render_model_card(distributed, "exported_model")
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        f"| held-out masked-LM loss, start -> end | {metrics['heldout_mlm_loss_start']:.4f} -> "
        f"{metrics['heldout_mlm_loss_end']:.4f} |"
    ) in card
    step_card = (run / "exported_model_step_2" / "README.md").read_text()
    assert "at optimizer step 2" in step_card
    assert (
        json.loads((run / "exported_model_step_2" / "dapt_export.json").read_text())["training"][
            "steps"
        ]
        == 2
    )
    # the tiny RoBERTa was saved as a masked LM, without a pooler: its exports have none either
    weights = load_file(run / "exported_model" / "model.safetensors")
    assert not [name for name in weights if ".pooler." in name]


def test_an_export_keeps_the_pooler_of_its_base_model(tmp_path):
    """
    A BERT checkpoint with a pooler and no masked-LM head, as MiniLM's: the encoder a classifier
    loads from a DAPT export, and from a TAPT export of that, has the checkpoint's pooler, not
    one initialised at random, beside the weights masked-LM training changed.
    """
    base = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    original = AutoModel.from_pretrained(base).state_dict()
    model_name = base
    for config in ("dapt.jsonnet", "tapt.jsonnet"):
        run = tmp_path / config.split(".")[0]
        env = mlm_env(model_name, NUM_STEPS="2", NUM_CHECKPOINTS="1")
        allennlp(["train", str(CONFIGS / config), "-s", str(run)], env=env)
        encoder, loading = AutoModel.from_pretrained(
            run / "exported_model", output_loading_info=True
        )
        assert loading["missing_keys"] == []
        adapted = encoder.state_dict()
        for name in ("pooler.dense.weight", "pooler.dense.bias"):
            assert torch.equal(adapted[name], original[name])
        assert not torch.equal(
            adapted["encoder.layer.0.output.dense.weight"],
            original["encoder.layer.0.output.dense.weight"],
        )
        model_name = run / "exported_model"
