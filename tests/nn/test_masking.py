import torch

from dapt_plugin.nn.masking import IGNORE_INDEX, mask_tokens, select_positions, word_start_table

MASK, VOCAB, PAD, BOS, EOS = 4, 1000, 1, 0, 2


def _batch(rows: int = 500, length: int = 300, seed: int = 0):
    """Rows of random word ids with <s> ... </s> and trailing padding of random length."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (rows, length), generator=generator)
    lengths = torch.randint(length // 2, length, (rows,), generator=generator)
    positions = torch.arange(length).expand(rows, length)
    ids[:, 0] = BOS
    ids[positions == (lengths - 1)[:, None]] = EOS
    ids[positions >= lengths[:, None]] = PAD
    maskable = (ids != PAD) & (ids != BOS) & (ids != EOS)
    return ids, maskable


def test_masking_rates_match_the_reference_behaviour():
    ids, maskable = _batch()
    total = int(maskable.sum())
    assert total > 100_000
    masked, labels = mask_tokens(ids, maskable, MASK, VOCAB, 0.15, torch.Generator().manual_seed(1))
    selected = labels != IGNORE_INDEX
    # selection rate 15% (binomial sd over ~110K tokens is ~0.1%, tolerance 0.5%)
    assert abs(selected.sum().item() / total - 0.15) < 0.005
    assert torch.equal(labels[selected], ids[selected])
    n = selected.sum().item()
    to_mask = (masked == MASK) & selected
    unchanged = (masked == ids) & selected
    replaced = selected & ~to_mask & ~unchanged
    # 80 / 10 / 10 of ~16K selected tokens (sd <= 0.3%), tolerance 1.5%; a random replacement
    # can draw the original token (1 in 1000), which counts as unchanged.
    assert abs(to_mask.sum().item() / n - 0.8) < 0.015
    assert abs(replaced.sum().item() / n - 0.1) < 0.015
    assert abs(unchanged.sum().item() / n - 0.1) < 0.015
    # special and padding tokens are never selected or changed
    assert not selected[~maskable].any()
    assert torch.equal(masked[~maskable], ids[~maskable])


def test_the_replacement_shares_mean_what_hugging_face_s_do():
    # Hugging Face's "balanced" example: mask_replace_prob=0.5, random_replace_prob=0.4 give 50%
    # mask tokens, 40% random tokens and 10% unchanged, each a share of all selected tokens
    ids, maskable = _batch()
    masked, labels = mask_tokens(
        ids,
        maskable,
        MASK,
        VOCAB,
        0.15,
        torch.Generator().manual_seed(3),
        mask_replace_prob=0.5,
        random_replace_prob=0.4,
    )
    selected = labels != IGNORE_INDEX
    n = selected.sum().item()
    to_mask = (masked == MASK) & selected
    unchanged = (masked == ids) & selected
    # ~16K selected tokens (sd <= 0.4%), tolerance 1.5%
    assert abs(to_mask.sum().item() / n - 0.5) < 0.015
    assert abs((selected & ~to_mask & ~unchanged).sum().item() / n - 0.4) < 0.015
    assert abs(unchanged.sum().item() / n - 0.1) < 0.015


def test_masks_differ_between_draws_and_repeat_under_the_same_seed():
    ids, maskable = _batch(rows=20, length=64)
    first = mask_tokens(ids, maskable, MASK, VOCAB, 0.15, torch.Generator().manual_seed(1))
    again = mask_tokens(ids, maskable, MASK, VOCAB, 0.15, torch.Generator().manual_seed(1))
    other = mask_tokens(ids, maskable, MASK, VOCAB, 0.15, torch.Generator().manual_seed(2))
    assert torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_whole_word_masking_selects_every_piece_of_a_word_together(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    table = word_start_table(tokenizer)
    text = "the compound zolvexmin strongly inhibits the receptor in kidney cells . " * 40
    ids = torch.tensor([tokenizer(text, truncation=True, max_length=512)["input_ids"]] * 64)
    maskable = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    starts = table[ids]
    selected = select_positions(maskable, 0.15, torch.Generator().manual_seed(0), starts)
    # a continuation piece (not a word start, not right after a special token) shares its
    # word's fate: selected exactly when the piece before it is
    previous_maskable = torch.nn.functional.pad(maskable[:, :-1], (1, 0), value=False)
    continuation = maskable & ~starts & previous_maskable
    assert continuation.sum() > 100
    previous_selected = torch.nn.functional.pad(selected[:, :-1], (1, 0), value=False)
    assert torch.equal(selected[continuation], previous_selected[continuation])
    words = (maskable & (starts | ~previous_maskable)).sum().item()
    assert (
        abs(selected[maskable & (starts | ~previous_maskable)].sum().item() / words - 0.15) < 0.02
    )
