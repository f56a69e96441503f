import math

import torch
from allennlp.common import Params
from allennlp.training.optimizers import Optimizer

from dapt_plugin.training.optimizers.bert_adam import BertAdamUpdate


def _reference_step(parameters, states, lr, betas, eps, weight_decay, max_grad_norm):
    """BertAdam's update as pytorch-pretrained-bert writes it, one tensor and one number at a time."""
    for p, state in zip(parameters, states):
        grad = p.grad.flatten().tolist()
        norm = math.sqrt(sum(g * g for g in grad))
        scale = min(1.0, max_grad_norm / (norm + 1e-6))
        values = p.data.flatten().tolist()
        for i, g in enumerate(grad):
            g *= scale
            state["m"][i] = betas[0] * state["m"][i] + (1 - betas[0]) * g
            state["v"][i] = betas[1] * state["v"][i] + (1 - betas[1]) * g * g
            update = state["m"][i] / (math.sqrt(state["v"][i]) + eps) + weight_decay * values[i]
            values[i] -= lr * update
        p.data = torch.tensor(values, dtype=torch.float64).view_as(p)


def test_the_update_is_bert_adams_no_bias_correction_per_tensor_clipping_decay_in_the_update():
    torch.manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2)]
    ours = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    settings = dict(lr=0.01, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1, max_grad_norm=1.0)
    optimizer = BertAdamUpdate(ours, **settings)
    states = [{"m": [0.0] * p.numel(), "v": [0.0] * p.numel()} for p in theirs]
    for step in range(4):
        # gradients of norms above and below 1: some tensors are clipped, some not
        gradients = [
            torch.randn(shape, dtype=torch.float64) * (3.0 if i != 1 else 0.1)
            for i, shape in enumerate(shapes)
        ]
        for p, q, g in zip(ours, theirs, gradients):
            p.grad, q.grad = g.clone(), g.clone()
        optimizer.step()
        _reference_step(theirs, states, **settings)
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-10, atol=1e-12)
    # Adam with bias correction would have moved the first step by lr * sign(g) (about 0.01 per
    # value); without it the first step is lr * 0.1 / sqrt(0.02) * sign(g) of the clipped gradient
    first = torch.randn(4, dtype=torch.float64, requires_grad=True)
    start = first.detach().clone()
    first.grad = torch.full((4,), 1e-3, dtype=torch.float64)
    BertAdamUpdate([first], lr=0.01, betas=(0.9, 0.98), eps=0.0).step()
    torch.testing.assert_close(
        start - first.detach(), torch.full((4,), 0.01 * 0.1 / math.sqrt(0.02), dtype=torch.float64)
    )


def test_registered_with_allennlps_parameter_groups():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    params = Params(
        {
            "type": "bert_adam",
            "lr": 2e-5,
            "weight_decay": 0.1,
            "parameter_groups": [[["bias", "1\\.weight"], {"weight_decay": 0.0}]],
        }
    )
    optimizer = Optimizer.from_params(
        model_parameters=list(model.named_parameters()), params=params
    )
    assert isinstance(optimizer, BertAdamUpdate)
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, 0.1] and [len(g["params"]) for g in optimizer.param_groups] == [3, 1]
    assert optimizer.param_groups[0]["max_grad_norm"] == 1.0
