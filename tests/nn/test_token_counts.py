import torch

from dapt_plugin.nn.token_counts import count_tokens


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
