import json
import subprocess
import sys

import pytest
import transformers

from tests.conftest import PROJECT_ROOT

# Run in a fresh interpreter that imports nothing but `dapt_plugin`, so that nothing the tests
# themselves import can make these pass.
_AFTER_PLUGIN_IMPORT = """
import json, sys
import dapt_plugin
from allennlp.data import DatasetReader
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.models import Model
from allennlp.training.learning_rate_schedulers import LearningRateScheduler

tokens = PretrainedTransformerTokenizer(sys.argv[1]).tokenize("the cook painted the garden .")
print(json.dumps({
    "tokens": [token.text for token in tokens],
    "registered": {
        "text_classification_json_with_sampling": "text_classification_json_with_sampling" in DatasetReader.list_available(),
        "basic_classifier_with_f1": "basic_classifier_with_f1" in Model.list_available(),
        "linear_with_warmup_ratio": "linear_with_warmup_ratio" in LearningRateScheduler.list_available(),
    },
}))
"""


@pytest.fixture(scope="module")
def after_plugin_import(tiny_model):
    process = subprocess.run([sys.executable, "-c", _AFTER_PLUGIN_IMPORT, str(tiny_model)], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_pretrained_transformer_tokenizer_works_after_plugin_import(after_plugin_import):
    assert after_plugin_import["tokens"][0] == "<s>"
    assert after_plugin_import["tokens"][-1] == "</s>"
    assert "Ġpainted" in after_plugin_import["tokens"]


def test_transformers_still_rejects_what_the_tokenizer_patch_drops(tiny_model):
    """
    What allennlp's unpatched `cached_transformers.get_tokenizer` does. When this stops failing,
    the patch in `dapt_plugin/compat.py` is no longer needed on the pinned transformers.
    """
    with pytest.raises(AttributeError, match="add_special_tokens conflicts with the method add_special_tokens"):
        transformers.AutoTokenizer.from_pretrained(str(tiny_model), add_special_tokens=False)


def test_every_promised_component_is_registered(after_plugin_import):
    assert after_plugin_import["registered"] == {
        "text_classification_json_with_sampling": True,
        "basic_classifier_with_f1": True,
        "linear_with_warmup_ratio": True,
    }


@pytest.mark.parametrize("kernel", [{"fused": True}, {"foreach": True}, {}])
def test_adamw_takes_torchs_fused_and_foreach_kernels(kernel):
    """The configs pass `fused: true` (FUSED_ADAMW, on by default) to allennlp's `adamw`, which rejects it unpatched."""
    import torch
    from allennlp.common import Params
    from allennlp.training.optimizers import Optimizer

    import dapt_plugin  # noqa: F401

    model = torch.nn.Linear(4, 2)
    params = Params({"type": "adamw", "lr": 0.1, "weight_decay": 0.01,
                     "parameter_groups": [[["bias"], {"weight_decay": 0.0}]], **kernel})
    optimizer = Optimizer.from_params(model_parameters=list(model.named_parameters()), params=params)
    assert {k: optimizer.defaults[k] for k in kernel} == kernel
    assert sorted(group["weight_decay"] for group in optimizer.param_groups) == [0.0, 0.01]
    before = model.weight.detach().clone()
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)
