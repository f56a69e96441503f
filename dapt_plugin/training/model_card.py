"""
The model card of an export (`exported_model/README.md`, in the format the Hugging Face Hub
renders) and the same facts in machine form (`dapt_export.json`): what the model started from,
what it was trained on (files, sizes, content hashes), how (steps, tokens, batch, learning rate,
masking, head warm-up), what it reached, with which versions, and the command that reproduces it.
"""

import json
import os
import shlex
import sys
from typing import Any, Dict, List, Optional

import allennlp
import torch
import transformers

from dapt_plugin.common.configs import CONFIG_SOURCE_VARIABLE
from dapt_plugin.common.pretrained import looks_like_path
from dapt_plugin.version import VERSION


def _arguments() -> List[str]:
    """This process's command line less `--recover`/`-r` (a resumed run's command is that of the run it resumes)."""
    return [arg for arg in sys.argv if arg not in ("--recover", "-r")]


def train_config_file() -> Optional[str]:
    """
    The config of the `allennlp train CONFIG ...` this process runs, as a user would give it: the
    jsonnet that `allennlp adapt` resolved the phase's config from (`CONFIG_SOURCE_VARIABLE`),
    or CONFIG itself; `None` for another command.
    """
    args = _arguments()[1:]
    if len(args) < 2 or args[0] != "train":
        return None
    return os.environ.get(CONFIG_SOURCE_VARIABLE) or args[1]


def command_line(environment: Dict[str, str]) -> str:
    """
    The command this process runs, as a user types it: the variables it was given, then
    `allennlp ...` less `--recover`/`-r`; in a phase of `allennlp adapt`, with the jsonnet its
    config was resolved from (`CONFIG_SOURCE_VARIABLE`) in place of that resolved copy.
    """
    args = _arguments()
    if args and os.path.basename(args[0]) in ("allennlp", "__main__.py"):
        args[0] = "allennlp"
    config_file = train_config_file()
    if config_file is not None:
        args[2] = config_file  # `allennlp train CONFIG ...`
    settings = [f"{name}={shlex.quote(value)}" for name, value in sorted(environment.items())]
    return " ".join(settings + [shlex.quote(arg) for arg in args])


def versions() -> Dict[str, str]:
    return {
        "dapt_plugin": VERSION,
        "allennlp": allennlp.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _metric(metrics: Dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _files_table(files: List[Dict[str, Any]]) -> List[str]:
    lines = ["| file | size | sha256 |", "| --- | --- | --- |"]
    lines += [f"| `{f['path']}` | {f['bytes']:,} bytes | `{f['sha256']}` |" for f in files]
    return lines


def render_model_card(facts: Dict[str, Any], name: str) -> str:
    """The README.md of the export `name` from the facts that `dapt_export.json` holds."""
    base = facts["base_model"]
    metrics: Dict[str, Any] = facts.get("metrics") or {}
    training = facts["training"]
    masking = training["masking"]
    header = [
        "---",
        "library_name: transformers",
        "pipeline_tag: fill-mask",
        "tags:",
        "- dapt_plugin",
        "- masked-lm",
        "- continued-pretraining",
    ]
    if not looks_like_path(base):
        header.append(f"base_model: {base}")
    header.append("---")
    warmup = training.get("head_warmup_steps")
    missing = training.get("head_missing_weights")
    head = (
        f"trained alone for {warmup:,} steps first ({missing} head tensors were missing from the "
        "checkpoint)"
        if warmup
        else "complete in the checkpoint"
        if not missing
        else f"missing from the checkpoint ({missing} tensors) and not warmed up"
    )
    lines = header + [
        "",
        f"# {name}",
        "",
        f"`{base}` after continued masked-LM pretraining (DAPT/TAPT, Gururangan et al., ACL 2020) with "
        f"dapt_plugin {VERSION}"
        + (f", at optimizer step {facts['step']:,}" if "step" in facts else "")
        + ".",
        "",
        "## Training data",
        "",
        *_files_table(facts["data"]["train"]),
        "",
    ]
    if facts["data"].get("heldout"):
        lines += ["Held-out text:", "", *_files_table(facts["data"]["heldout"]), ""]
    lines += [
        "## Training",
        "",
        "| | |",
        "| --- | --- |",
        f"| optimizer steps | {training['steps']:,} |",
        f"| tokens trained on (padding excluded) | {training['tokens_seen']:,}"
        + (
            f" (the primary worker's count times its {training['workers']} workers)"
            if training.get("workers", 1) > 1
            else ""
        )
        + " |",
        f"| batch | {training['effective_batch']:,} sequences of up to {training['max_length']} tokens "
        f"(`{training['mode']}`) |",
        f"| learning rate | {training['learning_rate']:g} (AdamW) |",
        f"| masking | {masking['mlm_probability']:.0%} of the tokens"
        + (" (whole words)" if masking["whole_word_masking"] else "")
        + f"; {masking['mask_replace_prob']:.0%} mask token, {masking['random_replace_prob']:.0%} "
        "random token, the rest unchanged |",
        f"| masked-LM head | {head} |",
        "",
        "## Results",
        "",
        "| | |",
        "| --- | --- |",
        f"| final training loss | {_metric(metrics, 'training_loss')} |",
        f"| held-out masked-LM loss, start -> end | {_metric(metrics, 'heldout_mlm_loss_start')} -> "
        f"{_metric(metrics, 'heldout_mlm_loss_end')} |",
        f"| best validation masked-LM loss | {_metric(metrics, 'best_validation_mlm_loss')} |",
        "",
        "## Reproduce",
        "",
        "```",
        facts["command"],
        "```",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
        + ". The full resolved config is `config` in `dapt_export.json`.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForMaskedLM, AutoTokenizer",
        "",
        f'model = AutoModelForMaskedLM.from_pretrained("{name}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        "```",
        "",
        "or set it as `MODEL_NAME` of the next phase (TAPT, the classifier).",
        "",
    ]
    return "\n".join(lines)


def file_facts(path: str, sha256: str) -> Dict[str, Any]:
    return {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "sha256": sha256}


def config_of(serialization_dir: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(serialization_dir, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
