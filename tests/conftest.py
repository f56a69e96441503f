"""
Shared fixtures: the synthetic fixture data under tests/fixtures/data, a tiny RoBERTa built
from it once per test session (random weights, BPE tokenizer trained on fixture text), and a
classifier trained with it once per session.
"""

import json
import multiprocessing.forkserver
import multiprocessing.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread per process: `make test` runs two test workers on two cores, and the processes the
# tests start (which inherit this) then compute as the in-process runs they are compared with do.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tokenization caches of the test session live in a temporary directory, never in ~/.cache,
# made by the first process of the session (the test workers and the processes tests start
# inherit it) and removed when that process exits.
if "DAPT_PLUGIN_CACHE" not in os.environ:
    _SESSION_CACHE = tempfile.TemporaryDirectory(prefix="dapt_plugin_test_cache-")
    os.environ["DAPT_PLUGIN_CACHE"] = _SESSION_CACHE.name


PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
DATA = FIXTURES / "data"
TASK = DATA / "task"
CONFIGS = PROJECT_ROOT / "training_config"


def pytest_configure(config):
    """
    Imports the plugin (which registers its components for the in-process tests) where tests
    run: in this process, or in each worker under `-n`, and not in the xdist controller, which
    only hands tests out (the imports take ~8 s on this machine before any worker starts).
    """
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        import dapt_plugin  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _processes_only_where_marked(request):
    """
    Under `make test-fast` (`-m "not process"`), a test (or a fixture it uses) that starts a
    process of its own (a new interpreter, or a run forked from the preloaded server) fails with
    the mark it lacks.
    """
    if "not process" not in (request.config.option.markexpr or ""):
        yield
        return

    def refuse(*args, **kwargs):
        test = os.environ.get("PYTEST_CURRENT_TEST", "a test").split(" ")[0]
        raise AssertionError(f"{test} starts a process of its own: mark it `@pytest.mark.process`")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse)
        patch.setattr(multiprocessing.util, "spawnv_passfds", refuse)
        patch.setattr(multiprocessing.forkserver, "connect_to_new_process", refuse)
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide RoBERTa with a 1000-token BPE vocabulary, in `save_pretrained` layout."""
    from dapt_plugin.testing.tiny_model import build_tiny_roberta

    return build_tiny_roberta(
        tmp_path_factory.mktemp("tiny_roberta"), [DATA / "general.txt", DATA / "domain.txt"]
    )


@pytest.fixture(scope="session")
def trained_classifier(tiny_model, tmp_path_factory) -> Path:
    """Serialization directory of `training_config/classifier.jsonnet` trained on the fixture task."""
    run = tmp_path_factory.mktemp("classifier") / "run"
    allennlp(
        ["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(run)],
        env=classifier_env(tiny_model),
    )
    return run


# Run in a fresh interpreter that imports nothing but `dapt_plugin`, so that nothing the tests
# themselves import can make a check of what the plugin registers, or patches, pass.
_AFTER_PLUGIN_IMPORT = """
import json, sys
import dapt_plugin
from allennlp.common.registrable import Registrable
from allennlp.data.tokenizers import PretrainedTransformerTokenizer

tokens = PretrainedTransformerTokenizer(sys.argv[1]).tokenize("the cook painted the garden .")
print(json.dumps({
    "tokens": [token.text for token in tokens],
    "registry": [[base.__name__, name, cls.__module__, cls.__name__]
                 for base, registry in Registrable._registry.items() for name, (cls, _) in registry.items()],
}))
"""


@pytest.fixture(scope="session")
def after_plugin_import(tiny_model) -> dict:
    """
    What a fresh interpreter has after `import dapt_plugin` alone: `tokens`, a sentence tokenized
    with allennlp's `PretrainedTransformerTokenizer` of the tiny model, and `registry`, every
    registered name as `[base class, name, module, class]`.
    """
    process = subprocess.run(
        [sys.executable, "-c", _AFTER_PLUGIN_IMPORT, str(tiny_model)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.fixture
def phase_calls_in_process(monkeypatch):
    """
    What the experiment runner runs in a process of its own with `call_preloaded` (a selection,
    the evaluations) runs in this one: for tests of what it computes, not of the process.
    """
    monkeypatch.setattr(
        "dapt_plugin.experiment.runner.call_preloaded",
        lambda function, *args, env, log, hold: function(*args),
    )


def allennlp(
    args: List[str],
    env: Optional[Dict[str, str]] = None,
    cwd: Path = PROJECT_ROOT,
    check: bool = True,
    process: bool = False,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """
    Runs the `allennlp` command line with `env` over the environment, in this process unless
    `process` (for what needs a process of its own: plugin discovery, several workers, a guard
    installed at interpreter start-up); returns the finished run with its exit status and output.
    """
    from dapt_plugin.common.launch import run_allennlp
    from dapt_plugin.testing.cli import run_in_process

    if process:
        run = run_allennlp(args, env, cwd=cwd, threads=1, capture=True, timeout=timeout)
    else:
        run = run_in_process(args, env, cwd)
    if check and run.returncode != 0:
        raise AssertionError(
            f"allennlp {' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
        )
    return run


def classifier_env(model: Path, **overrides: str) -> Dict[str, str]:
    """Environment for `training_config/classifier.jsonnet` on the fixture task with a tiny model."""
    return {
        "MODEL_NAME": str(model),
        "TRAIN_PATH": str(TASK / "train.jsonl"),
        "DEV_PATH": str(TASK / "dev.jsonl"),
        "NUM_EPOCHS": "2",
        "MAX_LENGTH": "64",
        "EFFECTIVE_BATCH": "8",
        "BATCH_SIZE": "8",
        "LR": "1e-3",
        **overrides,
    }


def add_custom_code(model: Path, marker: Path) -> None:
    """Gives `model` a configuration class of its own whose module, when run, creates `marker`."""
    (model / "configuration_custom.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import RobertaConfig\n"
        "class CustomConfig(RobertaConfig):\n    model_type = 'dapt_custom'\n"
    )
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type="dapt_custom", auto_map={"AutoConfig": "configuration_custom.CustomConfig"}
    )
    (model / "config.json").write_text(json.dumps(config))


# the sizes of a tiny encoder config for `tiny_encoder` (BertConfig(**SMALL), ...)
SMALL = dict(
    vocab_size=0, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
)


def tiny_encoder(directory: Path, config) -> Path:
    """A randomly initialised encoder of `config` with a WordPiece tokenizer of the fixture words."""
    import torch
    from transformers import AutoModel, BertTokenizerFast

    directory.mkdir()
    words = sorted(set((DATA / "general.txt").read_text().lower().split()))
    (directory / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    tokenizer.save_pretrained(str(directory))
    config.vocab_size = len(tokenizer)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(directory))
    return directory


def tiny_classifier_params(encoder: Path, **overrides) -> dict:
    """A `basic_classifier_with_f1` of classifier.jsonnet's kind on `encoder`, embedder key "bert"."""
    return {
        "type": "basic_classifier_with_f1",
        "text_field_embedder": {
            "token_embedders": {
                "bert": {"type": "pretrained_transformer", "model_name": str(encoder)}
            },
        },
        "feedforward": {"num_layers": 1, "activations": "tanh", "dropout": 0.1},
        "dropout": 0.1,
        "namespace": "tags",
        **overrides,
    }


def tiny_classifier(encoder: Path, labels=("inhibitor", "activator", "neither"), **overrides):
    """`tiny_classifier_params` built for `labels`, in evaluation mode, seeded."""
    import torch
    from allennlp.common.params import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(list(labels), "labels")
    torch.manual_seed(1)
    params = Params(tiny_classifier_params(encoder, **overrides))
    return Model.from_params(vocab=vocab, params=params).eval()


def read_jsonl(path: Path) -> List[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# texts of the fixture task's dev set, for models to compute on
DEV_TEXTS = [line["text"] for line in read_jsonl(TASK / "dev.jsonl")[:8]]


def mlm_env(model: Path, **overrides: str) -> Dict[str, str]:
    """Environment for `dapt.jsonnet` / `tapt.jsonnet` on fixture text with a tiny model: a few steps."""
    return {
        "MODEL_NAME": str(model),
        "CORPUS_PATH": str(DATA / "domain.txt"),
        "TAPT_PATH": str(TASK / "train.jsonl"),
        "EFFECTIVE_BATCH": "16",
        "BATCH_SIZE": "8",
        "NUM_STEPS": "6",
        "NUM_CHECKPOINTS": "2",
        "MAX_LENGTH": "64",
        "LR": "1e-3",
        **overrides,
    }


# `settings` of the test experiments of `allennlp adapt`: a few steps per phase with a tiny model
ADAPT_SETTINGS = {
    "all": {"MAX_LENGTH": 64, "BATCH_SIZE": 8, "LR": 0.001},
    "dapt": {"NUM_STEPS": 4, "NUM_CHECKPOINTS": 2, "EFFECTIVE_BATCH": 16},
    "tapt": {"NUM_EPOCHS": 3, "EFFECTIVE_BATCH": 16},
    "classifier": {"NUM_EPOCHS": 1},
}


# the phases of `write_experiment`'s experiment, in the order `allennlp adapt` runs them
EXPERIMENT_PHASES = [
    "dapt",
    "select_knn",
    "select_random",
    "tapt",
    "dapt_tapt",
    "knn_tapt",
    "rand_tapt",
    *(
        f"classifier/{v}/seed_0"
        for v in ("baseline", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt")
    ),
]


def write_experiment(path: Path, model: Path, **overrides) -> Path:
    """An experiment file of `allennlp adapt` on the fixture data with a tiny model, at `path`."""
    experiment = {
        "base_model": str(model),
        "domain_corpus": str(DATA / "domain.txt"),
        "task": {split: str(TASK / f"{split}.jsonl") for split in ("train", "dev", "test")},
        "variants": ["baseline", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt"],
        "seeds": [0],
        "metric": "macro_f1",
        "knn_k": 3,
        "settings": ADAPT_SETTINGS,
        **overrides,
    }
    path.write_text(json.dumps(experiment))
    return path
