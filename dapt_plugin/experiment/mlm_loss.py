"""
The held-out masked-LM loss of every encoder of an experiment on every held-out text (the paper's
measure of how far each adaptation moved the model, by domain): `mlm_loss.json`, `mlm_loss.md`
and `mlm_loss.png` (a heatmap, encoders by rows, held-out texts by columns) beside `results.json`.
The numbers come from the experiment's `mlm_loss/<encoder>` phases (`runner.py`).
"""

import json
from pathlib import Path
from typing import Dict

from dapt_plugin.common.atomic import atomic_file
from dapt_plugin.experiment.drawing import draw

# the metrics `allennlp evaluate` reports of a masked-LM archive that the table keeps
METRICS = ("mlm_loss", "perplexity", "mlm_accuracy")


def mlm_loss_table(losses: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """
    The markdown table of `losses` (encoder -> held-out text -> metrics): one row per encoder,
    one column per held-out text, each cell the masked-LM loss (perplexity in brackets), the
    lowest of each column in bold.

    # Parameters

    losses : `Dict[str, Dict[str, Dict[str, float]]]`
        What `mlm_loss.json` holds under `losses`.
    """
    texts = list(next(iter(losses.values())))
    best = {text: min(row[text]["mlm_loss"] for row in losses.values()) for text in texts}
    lines = [
        "| encoder | " + " | ".join(texts) + " |",
        "| --- |" + " --- |" * len(texts),
    ]
    for encoder, row in losses.items():
        cells = []
        for text in texts:
            cell = f"{row[text]['mlm_loss']:.3f} ({row[text]['perplexity']:.1f})"
            cells.append(f"**{cell}**" if row[text]["mlm_loss"] == best[text] else cell)
        lines.append(f"| {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# what `write_mlm_loss` writes into the output directory
FILES = ("mlm_loss.json", "mlm_loss.md", "mlm_loss.png")


def write_mlm_loss(
    output: Path, losses: Dict[str, Dict[str, Dict[str, float]]], heldout: Dict[str, str]
) -> None:
    """
    Writes `mlm_loss.json`, `mlm_loss.md` and, where matplotlib can be imported, `mlm_loss.png`
    into `output`, each whole or not at all.

    # Parameters

    output : `Path`
        The experiment's output directory.
    losses : `Dict[str, Dict[str, Dict[str, float]]]`
        Encoder (`base`, then each masked-LM phase) -> held-out text name -> `METRICS`.
    heldout : `Dict[str, str]`
        Held-out text name -> its path, as the experiment gives them.
    """
    with atomic_file(str(output / "mlm_loss.json")) as handle:
        json.dump({"heldout": heldout, "losses": losses}, handle, indent=2)
    png = output / "mlm_loss.png"
    draw(png, "plot_mlm_loss", losses)
    sections = [
        "# Held-out masked-LM loss of each encoder\n",
        "Each encoder of the experiment on each held-out text, with the same masks for every "
        "encoder: masked-LM loss (perplexity), the lowest of each text in bold. `base` is the "
        "base model as it is; a checkpoint without a masked-LM head is measured with the "
        "randomly initialised head, as it starts DAPT or TAPT.\n",
        mlm_loss_table(losses),
    ]
    if png.exists():
        sections.append(f"![held-out masked-LM loss]({png.name})\n")
    sections.append(
        "Held-out texts: " + ", ".join(f"{name} `{path}`" for name, path in heldout.items()) + "\n"
    )
    with atomic_file(str(output / "mlm_loss.md")) as handle:
        handle.write("\n".join(sections))
