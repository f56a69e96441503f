from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.training.optimizers import Optimizer, make_parameter_groups


class BertAdamUpdate(torch.optim.Optimizer):
    """
    The update rule of `BertAdam` (pytorch-pretrained-bert), the optimizer the paper fine-tuned
    its classifiers with (the original repository's `bert_adam`): Adam without bias correction,
    each parameter tensor's gradient first clipped to an L2 norm of at most `max_grad_norm` on
    its own, and weight decay added to the update (`p -= lr * (m / (sqrt(v) + eps) + wd * p)`).
    Its learning-rate schedule is not part of it: with AllenNLP it is the trainer's
    `learning_rate_scheduler` (none for the original's constant rate, `t_total` -1).

    # Parameters

    params : `Any`
        Parameters or parameter groups, as for any PyTorch optimizer.
    lr : `float`
        The learning rate.
    betas : `Tuple[float, float]`, optional (default = `(0.9, 0.999)`)
        Decay rates of the first and second moment estimates.
    eps : `float`, optional (default = `1e-6`)
        Added to the square root of the second moment.
    weight_decay : `float`, optional (default = `0.0`)
        Weight decay, added to the update before the learning rate scales it.
    max_grad_norm : `float`, optional (default = `1.0`)
        Each parameter tensor's gradient is scaled down to this L2 norm when it is larger
        (`torch.nn.utils.clip_grad_norm_` applied to one tensor at a time); 0 turns it off.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_grad_norm=max_grad_norm
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["next_m"] = torch.zeros_like(p)
                    self.state[p]["next_v"] = torch.zeros_like(p)
            means = [self.state[p]["next_m"] for p in params]
            variances = [self.state[p]["next_v"] for p in params]
            beta1, beta2 = group["betas"]
            if group["max_grad_norm"] > 0:
                # as clip_grad_norm_ on each tensor: scale by max_norm / (norm + 1e-6), at most 1
                norms = torch._foreach_norm(grads)
                scales = torch._foreach_add(norms, 1e-6)
                torch._foreach_reciprocal_(scales)
                torch._foreach_mul_(scales, group["max_grad_norm"])
                torch._foreach_clamp_max_(scales, 1.0)
                torch._foreach_mul_(grads, scales)
            torch._foreach_mul_(means, beta1)
            torch._foreach_add_(means, grads, alpha=1 - beta1)
            torch._foreach_mul_(variances, beta2)
            torch._foreach_addcmul_(variances, grads, grads, value=1 - beta2)
            denominators = torch._foreach_sqrt(variances)
            torch._foreach_add_(denominators, group["eps"])
            updates = torch._foreach_div(means, denominators)  # no bias correction
            if group["weight_decay"] > 0:
                torch._foreach_add_(updates, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, updates, alpha=-group["lr"])
        return loss


@Optimizer.register("bert_adam", constructor="construct")
class BertAdam(Optimizer):
    """
    `BertAdamUpdate` with AllenNLP's parameter groups: the original repository's `bert_adam`
    optimizer, whose schedule is the config's `learning_rate_scheduler`.

    # Parameters

    model_parameters : `List[Tuple[str, torch.nn.Parameter]]`
        Supplied by the trainer.
    parameter_groups : `List`, optional (default = `None`)
        AllenNLP parameter groups (regexes and per-group options), as for `adamw`.
    lr : `float`, optional (default = `2e-5`)
    betas : `Tuple[float, float]`, optional (default = `(0.9, 0.999)`)
    eps : `float`, optional (default = `1e-6`)
    weight_decay : `float`, optional (default = `0.0`)
    max_grad_norm : `float`, optional (default = `1.0`)
        See `BertAdamUpdate`.

    Registered as an `Optimizer` with name "bert_adam".
    """

    @classmethod
    def construct(
        cls,
        model_parameters: List[Tuple[str, torch.nn.Parameter]],
        parameter_groups: Optional[List[Tuple[List[str], Dict[str, Any]]]] = None,
        lr: float = 2e-5,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> torch.optim.Optimizer:
        return BertAdamUpdate(
            make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
        )
