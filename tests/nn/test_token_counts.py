import torch

from dapt_plugin.nn.token_counts import count_tokens, real_token_mask


def test_tokens_are_counted_without_padding():
    pad = 1
    masked_lm = {"input_ids": torch.tensor([[0, 5, 2, pad, pad], [0, 2, pad, pad, pad]])}
    assert count_tokens([masked_lm, masked_lm], pad_token_id=pad) == 10
    mask = torch.tensor([[True, True, False], [True, False, False]])
    text_field = {
        "tokens": {"roberta": {"token_ids": torch.ones(2, 3, dtype=torch.long), "mask": mask}},
        "label": torch.tensor([0, 1]),
    }
    assert count_tokens([text_field], pad_token_id=None) == 3
    assert count_tokens([{"label": torch.tensor([0, 1])}], pad_token_id=None) is None


def test_the_mask_of_real_tokens_comes_from_a_mask_or_the_padding_id():
    ids = torch.tensor([[0, 5, 2, 1], [0, 2, 1, 1]])
    assert real_token_mask({"input_ids": ids}, pad_token_id=1).sum(-1).tolist() == [3, 2]
    assert real_token_mask({"input_ids": ids}, pad_token_id=None).all()
    field = {"tokens": {"roberta": {"token_ids": ids, "mask": torch.tensor([[1, 1, 0, 0]] * 2)}}}
    assert real_token_mask(field, pad_token_id=1).sum().item() == 4
