from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.optimizers import Optimizer, make_parameter_groups


@Optimizer.register("apex_fused_adam", constructor="construct")
class ApexFusedAdam(Optimizer):
    """
    NVIDIA apex's `FusedAdam` in AdamW mode (decoupled weight decay), the optimizer of the
    paper's fairseq runs, for GPU training when apex is installed. apex is not on PyPI (the PyPI
    package named `apex` is unrelated): build it from NVIDIA's repository. Without apex, use the
    `adamw` optimizer with `fused: true` (`FUSED_ADAMW=true` in the configs), PyTorch's own fused
    kernel, which needs no extra package.

    # Parameters

    model_parameters : `List[Tuple[str, torch.nn.Parameter]]`
        Supplied by the trainer.
    parameter_groups : `List`, optional (default = `None`)
        AllenNLP parameter groups (regexes and per-group options), as for `adamw`.
    lr : `float`, optional (default = `0.001`)
    betas : `Tuple[float, float]`, optional (default = `(0.9, 0.999)`)
    eps : `float`, optional (default = `1e-08`)
    weight_decay : `float`, optional (default = `0.0`)

    Registered as an `Optimizer` with name "apex_fused_adam".
    """

    @classmethod
    def construct(
        cls,
        model_parameters: List[Tuple[str, torch.nn.Parameter]],
        parameter_groups: Optional[List[Tuple[List[str], Dict[str, Any]]]] = None,
        lr: float = 0.001,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-08,
        weight_decay: float = 0.0,
    ) -> torch.optim.Optimizer:
        try:
            from apex.optimizers import FusedAdam
        except ImportError:
            raise ConfigurationError(
                "optimizer `apex_fused_adam` needs NVIDIA apex, which is not installed (it is not the PyPI "
                "package `apex`); build it from https://github.com/NVIDIA/apex, or use the `adamw` optimizer "
                "with `fused: true` (FUSED_ADAMW=true)"
            ) from None
        return FusedAdam(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            adam_w_mode=True,
        )
