"""
Patches that let allennlp 2.10.1 (its last release, which pins torch<1.13 and transformers<4.21)
run on the stack in `requirements.txt` (torch 2.x, transformers 4.4x, Python 3.11).

Every patch is applied once, when `dapt_plugin` is imported, and each says what breaks without it.
Nothing here changes behaviour on a stack where the patch is not needed.
"""
import functools
import logging

import transformers
from allennlp.common import cached_transformers

logger = logging.getLogger(__name__)


def _patch_get_tokenizer() -> None:
    """
    allennlp's `PretrainedTransformerTokenizer` calls
    `cached_transformers.get_tokenizer(name, add_special_tokens=..., ...)`, which forwards
    `add_special_tokens` to `AutoTokenizer.from_pretrained`. transformers >= 4.4x stores unknown
    init kwargs on the tokenizer and later passes them again to every `__call__`/`encode`, so each
    tokenization fails with "got multiple values for keyword argument 'add_special_tokens'".
    The flag never belonged in `from_pretrained` (allennlp passes it per call as well), so the
    patch drops it there.
    """
    original = cached_transformers.get_tokenizer
    if getattr(original, "_dapt_plugin_patched", False):
        return

    @functools.wraps(original)
    def get_tokenizer(model_name: str, **kwargs) -> transformers.PreTrainedTokenizer:
        kwargs.pop("add_special_tokens", None)
        return original(model_name, **kwargs)

    get_tokenizer._dapt_plugin_patched = True  # type: ignore[attr-defined]
    cached_transformers.get_tokenizer = get_tokenizer


def apply_patches() -> None:
    _patch_get_tokenizer()
