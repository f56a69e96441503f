import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    CamembertConfig,
    CamembertForMaskedLM,
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    DistilBertConfig,
    DistilBertForMaskedLM,
    ElectraConfig,
    ElectraForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
)

from dapt_plugin.nn.masked_lm_heads import (
    HEAD_ROWS_MULTIPLE,
    KNOWN_FAMILIES,
    head_parameters,
    head_positions,
    masked_lm_head,
    missing_head_weights,
)

SMALL = dict(
    vocab_size=97,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=64,
)
FAMILIES = {
    "bert": lambda: BertForMaskedLM(BertConfig(**SMALL)),
    "roberta": lambda: RobertaForMaskedLM(RobertaConfig(**SMALL)),
    "xlm-roberta": lambda: XLMRobertaForMaskedLM(XLMRobertaConfig(**SMALL)),
    "camembert": lambda: CamembertForMaskedLM(CamembertConfig(**SMALL)),
    "distilbert": lambda: DistilBertForMaskedLM(
        DistilBertConfig(
            vocab_size=97, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=64
        )
    ),
    "electra-generator": lambda: ElectraForMaskedLM(ElectraConfig(**SMALL, embedding_size=8)),
    "deberta-v2": lambda: DebertaV2ForMaskedLM(DebertaV2Config(**SMALL)),
    "modernbert": lambda: ModernBertForMaskedLM(
        ModernBertConfig(
            **SMALL,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            cls_token_id=1,
            sep_token_id=2,
            reference_compile=False,
        )
    ),
}


def test_every_known_head_is_tested_here():
    tested = {type(build()).__name__ for build in FAMILIES.values()}
    assert tested == set(KNOWN_FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_masked_positions_only_give_the_full_models_logits(family):
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    input_ids = torch.randint(5, 97, (3, 11))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 7:] = 0
    selected = torch.rand(input_ids.shape) < 0.3
    selected &= attention_mask.bool()
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=attention_mask).logits[selected]
        hidden = model.base_model(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        ours = masked_lm_head(model)(model, hidden[selected])
    assert ours.shape == full.shape == (int(selected.sum()), 97)
    assert torch.allclose(ours, full, atol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_checkpoint_without_its_head_is_found(family, tmp_path):
    torch.manual_seed(0)
    model = FAMILIES[family]()
    head = head_parameters(model)
    assert head and not any(name.startswith(model.base_model_prefix + ".") for name in head)
    embeddings = model.get_input_embeddings().weight
    assert all(p is not embeddings for p in head.values()), (
        "the tied output projection is the encoder's"
    )
    model.save_pretrained(tmp_path)
    _, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert missing_head_weights(model, info["missing_keys"]) == []
    weights = load_file(tmp_path / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if k.startswith(model.base_model_prefix + ".")},
        tmp_path / "model.safetensors",
        metadata={"format": "pt"},
    )
    reloaded, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    missing = missing_head_weights(reloaded, info["missing_keys"])
    assert set(head) <= set(missing) <= set(info["missing_keys"])


def test_head_positions_are_the_selected_ones_padded_to_a_multiple_with_ignored_targets():
    labels = torch.full((3, 5), -100)
    labels[0, 1], labels[1, 4], labels[2, 0] = 7, 8, 9
    positions, targets, num_selected = head_positions(labels, multiple=4)
    assert positions.tolist() == [1, 9, 10, 0]
    assert targets.tolist() == [7, 8, 9, -100]
    assert num_selected == 3
    # the padding row's target is ignored: the loss is that of the selected rows alone
    logits = torch.randn(4, 11)
    assert torch.nn.functional.cross_entropy(logits, targets) == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:3], targets[:3]).item(), rel=1e-6
    )
    # an exact multiple gets no padding, and nothing selected gives no rows
    assert head_positions(labels, multiple=3)[0].tolist() == [1, 9, 10]
    empty = head_positions(torch.full((2, 4), -100))
    assert (empty[0].numel(), empty[1].numel(), empty[2]) == (0, 0, 0)


def test_head_rows_take_few_sizes_while_the_number_of_masked_tokens_varies():
    """
    The cause of issue 14's growing memory: a head tensor of a new size at every step (the number
    of masked tokens is a random draw) fragmented the allocator's heap. Over 400 draws of
    Binomial(1000, 0.15) masked tokens, the head sees at most 3 sizes, none more than 63 rows
    above the count.
    """
    generator = torch.Generator().manual_seed(0)
    counts, sizes = set(), set()
    for _ in range(400):
        labels = torch.where(torch.rand(8, 125, generator=generator) < 0.15, 5, torch.tensor(-100))
        positions, targets, num_selected = head_positions(labels)
        assert num_selected == int((labels != -100).sum())
        assert 0 <= positions.numel() - num_selected < HEAD_ROWS_MULTIPLE
        assert int((targets != -100).sum()) == num_selected
        counts.add(num_selected)
        sizes.add(positions.numel())
    assert len(counts) > 40 and len(sizes) <= 3
