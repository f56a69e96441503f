import pytest
import torch
import transformers

from dapt_plugin.nn.selected_rows import encode_rows, encodes_rows

FAMILIES = [
    (transformers.BertModel, transformers.BertConfig),
    (transformers.RobertaModel, transformers.RobertaConfig),
    (transformers.XLMRobertaModel, transformers.XLMRobertaConfig),
    (transformers.CamembertModel, transformers.CamembertConfig),
]
SHAPE = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    type_vocab_size=2,
)


def encoder(model_class, config_class, attention="sdpa", **options):
    torch.manual_seed(0)
    config = config_class(**SHAPE, attn_implementation=attention, **options)
    return model_class(config, add_pooling_layer=False)


def batch():
    """Three texts, two padded; ids of padding 1 (RoBERTa's pad id)."""
    input_ids = torch.randint(5, 100, (3, 10), generator=torch.Generator().manual_seed(1))
    attention_mask = torch.ones(3, 10, dtype=torch.long)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    input_ids[attention_mask == 0] = 1
    return input_ids, attention_mask


# repeated rows, rows of every text, unsorted, a padding position (29)
ROWS = torch.tensor([13, 0, 10, 20, 5, 0, 0, 29, 21])


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("model_class, config_class", FAMILIES)
def test_the_rows_are_those_of_the_full_forward(model_class, config_class, attention):
    model = encoder(model_class, config_class, attention).eval()
    assert encodes_rows(model)
    input_ids, attention_mask = batch()
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = encode_rows(model, ROWS, input_ids, attention_mask)
    assert rows.shape == (len(ROWS), SHAPE["hidden_size"])
    assert torch.allclose(rows, full.flatten(0, 1)[ROWS], atol=1e-5)


@pytest.mark.parametrize("model_class, config_class", FAMILIES[:2])
def test_gradients_are_those_of_the_full_forward(model_class, config_class):
    """In training (dropout off, so the two compute the same function), every weight's gradient."""
    model = encoder(
        model_class, config_class, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    ).train()
    input_ids, attention_mask = batch()
    weights = torch.randn(
        len(ROWS), SHAPE["hidden_size"], generator=torch.Generator().manual_seed(2)
    )

    def gradients(hidden):
        model.zero_grad()
        (hidden * weights).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    full = gradients(
        model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.flatten(0, 1)[
            ROWS
        ]
    )
    rows = gradients(encode_rows(model, ROWS, input_ids, attention_mask))
    assert full.keys() == rows.keys()
    assert any(name.startswith("encoder.layer.2.intermediate") for name in rows)
    for name in full:
        assert torch.allclose(rows[name], full[name], atol=1e-5), name


def test_token_type_ids_and_texts_without_padding():
    model = encoder(*FAMILIES[0]).eval()
    input_ids, _ = batch()
    attention_mask = torch.ones_like(input_ids)
    token_type_ids = (torch.arange(10) >= 4).long().expand(3, 10)
    with torch.no_grad():
        full = model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state.flatten(0, 1)[ROWS]
        rows = encode_rows(model, ROWS, input_ids, attention_mask, token_type_ids)
        untyped = encode_rows(model, ROWS, input_ids, attention_mask)
    assert torch.allclose(rows, full, atol=1e-5)
    assert not torch.allclose(untyped, full, atol=1e-3)


def test_the_last_layer_runs_at_the_selected_rows_only():
    model = encoder(*FAMILIES[1]).eval()
    seen = []
    for layer in model.encoder.layer:
        layer.intermediate.dense.register_forward_hook(
            lambda module, args, output: seen.append(args[0].shape[:-1].numel())
        )
    input_ids, attention_mask = batch()
    with torch.no_grad():
        encode_rows(model, ROWS, input_ids, attention_mask)
    # every position in the first two layers, the 7 distinct rows in the last
    assert seen == [30, 30, 7]


@pytest.mark.parametrize(
    "change",
    [
        "relative positions",
        "gradient checkpointing",
        "torch.compile",
        "another layout",
    ],
)
def test_encoders_it_does_not_apply_to_run_their_own_forward(change):
    if change == "relative positions":
        model = encoder(*FAMILIES[0], position_embedding_type="relative_key")
    elif change == "another layout":
        model = transformers.DistilBertModel(
            transformers.DistilBertConfig(
                vocab_size=100, dim=32, n_layers=1, n_heads=4, hidden_dim=64
            )
        )
    else:
        model = encoder(*FAMILIES[0])
        assert encodes_rows(model)
        if change == "gradient checkpointing":
            model.gradient_checkpointing_enable()
        else:
            model.compile()  # compiles on the first call only
    assert not encodes_rows(model)
