"""
Patches that let allennlp 2.10.1 (its last release, which pins torch<1.13 and transformers<4.21)
run on the stack in `requirements.txt` (torch 2.x, transformers 4.4x, Python 3.11).

Every patch is applied once, when `dapt_plugin` is imported, and each says what breaks without it.
Nothing here changes behaviour on a stack where the patch is not needed.
"""
import functools
from typing import Any, Dict, List, Optional, Tuple

import torch
import transformers
from allennlp.common import cached_transformers


def _patch_get_tokenizer() -> None:
    """
    allennlp's `PretrainedTransformerTokenizer` (also used inside the `pretrained_transformer`
    token indexer) loads its tokenizer with
    `cached_transformers.get_tokenizer(name, add_special_tokens=...)`, which forwards the flag to
    `AutoTokenizer.from_pretrained` as an init argument. transformers (4.49 here) rejects init
    arguments named like a tokenizer method, so building any `pretrained_transformer` tokenizer
    or indexer fails with "AttributeError: add_special_tokens conflicts with the method
    add_special_tokens in RobertaTokenizerFast". The flag never belonged in `from_pretrained`:
    allennlp passes `add_special_tokens` again on every call that encodes text, so the patch
    drops it there.
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


def _patch_adamw_kernels() -> None:
    """
    allennlp's `adamw` optimizer (`AdamWOptimizer`) predates PyTorch's `foreach` and `fused` AdamW
    kernels and accepts only the arguments it names, so `"fused": true` in a config
    (`FUSED_ADAMW=true`) fails with "Extra parameters passed to AdamWOptimizer: {'fused': True}".
    The fused kernel (CPU and CUDA) updates every parameter in one pass instead of about ten
    tensor operations per parameter; the masked-LM configs use it (see `benchmarks/RESULTS.md`).
    The patch adds torch's two arguments; left unset (`null`), torch chooses as before.
    """
    from allennlp.training.optimizers import AdamWOptimizer, make_parameter_groups

    if getattr(AdamWOptimizer.__init__, "_dapt_plugin_patched", False):
        return

    def __init__(
        self,
        model_parameters: List[Tuple[str, torch.nn.Parameter]],
        parameter_groups: List[Tuple[List[str], Dict[str, Any]]] = None,
        lr: float = 0.001,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-08,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        foreach: Optional[bool] = None,
        fused: Optional[bool] = None,
    ) -> None:
        super(AdamWOptimizer, self).__init__(
            params=make_parameter_groups(model_parameters, parameter_groups),
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, foreach=foreach, fused=fused,
        )

    __init__._dapt_plugin_patched = True  # type: ignore[attr-defined]
    AdamWOptimizer.__init__ = __init__


def apply_patches() -> None:
    _patch_get_tokenizer()
    _patch_adamw_kernels()
