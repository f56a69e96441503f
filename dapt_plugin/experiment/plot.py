"""
The results of `allennlp adapt` as a picture, `results.png` beside `results.json`: the paper's
Table 5 as bars. Two panels, dev and test; in each, one bar per variant whose height is the mean
of the task metric over the seeds (in percent, as in `results.md`) and whose error bar is its
standard deviation, each seed's own score a dot on it, the value written above it, and the
baseline's mean as a dashed reference line. A variant below the baseline on dev by more than the
spread over seeds (`results.md`'s "(below baseline)") is drawn in red in both panels.

Also `mlm_loss.png`, the held-out masked-LM loss of every encoder on every held-out text as a
heatmap (`plot_mlm_loss`).
"""

import math
from typing import Dict, List

from dapt_plugin.common.atomic import atomic_path
from dapt_plugin.common.optional_dependencies import optional_dependency

with optional_dependency("the results plot", "matplotlib"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

SPLITS = ("dev", "test")
_COLOURS = {"baseline": "#9e9e9e", "adapted": "#1f77b4", "below baseline": "#d62728"}


def draw_results(results: Dict) -> Figure:
    """
    The figure of `results` (as `ExperimentRunner.results` returns them and `results.json` holds
    them): one panel per split (`figure.axes`, dev then test), in each one bar per variant in the
    order of `results["variants"]`, its height 100 × the mean, its error bar 100 × the standard
    deviation.
    """
    metric, variants = results["metric"], results["variants"]
    names = list(variants)
    seeds = len(results.get("seeds", [])) or max(len(row["seeds"]) for row in variants.values())
    figure = Figure(figsize=(2.0 + 2 * max(3.0, 0.9 * len(names)), 4.2), dpi=150)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(SPLITS), sharey=True, squeeze=False)[0]
    colours = [_colour(name, variants[name]) for name in names]
    scores = {
        split: [
            [100 * run[split][metric] for run in variants[name]["seeds"].values()] for name in names
        ]
        for split in SPLITS
    }
    means = {split: [100 * variants[name][split]["mean"] for name in names] for split in SPLITS}
    stds = {split: [100 * variants[name][split]["std"] for name in names] for split in SPLITS}
    extents = [
        value
        for split in SPLITS
        for mean, std, values in zip(means[split], stds[split], scores[split])
        for value in (mean - std, mean + std, *values)
    ]
    low, high = min(extents), max(extents)
    span = max(high - low, 1.0)
    # the differences between variants are a few points: the axis starts near the lowest score
    bottom = max(0.0, 5 * math.floor((low - span) / 5))
    for axes, split in zip(panels, SPLITS):
        positions = list(range(len(names)))
        axes.bar(
            positions,
            means[split],
            yerr=stds[split],
            color=colours,
            capsize=4,
            width=0.65,
            error_kw={"elinewidth": 1, "ecolor": "black"},
            zorder=2,
        )
        for position, values in zip(positions, scores[split]):
            axes.scatter([position] * len(values), values, s=9, color="black", alpha=0.6, zorder=3)
        for position, mean, std, values in zip(positions, means[split], stds[split], scores[split]):
            axes.annotate(
                f"{mean:.1f} ± {std:.1f}",
                (position, max(mean + std, *values)),  # above the error bar and the dots
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        if "baseline" in variants:
            axes.axhline(
                100 * variants["baseline"][split]["mean"],
                color="#555555",
                linestyle="--",
                linewidth=1,
                zorder=1,
            )
        axes.set_xticks(
            positions,
            labels=names,
            rotation=30 if len(names) > 4 else 0,
            ha="right" if len(names) > 4 else "center",
            rotation_mode="anchor",
        )
        axes.set_title(split)
        axes.grid(axis="y", alpha=0.3, zorder=0)
        axes.set_ylim(bottom, high + 0.25 * (high - bottom))
    panels[0].set_ylabel(f"{metric} (%)")
    figure.legend(
        handles=_legend(names, variants),
        loc="lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    figure.suptitle(f"{metric}: mean ± standard deviation over {seeds} seed(s); dots: each seed")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return figure


def plot_results(results: Dict, path: str) -> None:
    """Draws `results` (see `draw_results`) and writes the PNG to `path`, atomically."""
    figure = draw_results(results)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def plot_mlm_loss(losses: Dict[str, Dict[str, Dict[str, float]]], path: str) -> None:
    """
    Writes the heatmap of `losses` (encoder -> held-out text -> metrics, as `mlm_loss.json`
    holds them) to `path`, atomically: encoders by rows, held-out texts by columns, each cell
    the masked-LM loss, darker where it is lower.
    """
    encoders, texts = list(losses), list(next(iter(losses.values())))
    values = [[losses[encoder][text]["mlm_loss"] for text in texts] for encoder in encoders]
    figure = Figure(figsize=(2.5 + 1.3 * len(texts), 1.5 + 0.55 * len(encoders)), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues_r", aspect="auto")
    axes.set_xticks(range(len(texts)), labels=texts)
    axes.set_yticks(range(len(encoders)), labels=encoders)
    middle = (min(map(min, values)) + max(map(max, values))) / 2
    for row, encoder_values in enumerate(values):
        for column, value in enumerate(encoder_values):
            colour = "white" if value < middle else "black"
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", color=colour)
    figure.colorbar(image, ax=axes, label="masked-LM loss")
    axes.set_title("Held-out masked-LM loss")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def _colour(name: str, row: Dict) -> str:
    if name == "baseline":
        return _COLOURS["baseline"]
    return _COLOURS["below baseline" if row.get("below_baseline") else "adapted"]


def _legend(names: List[str], variants: Dict) -> List:
    handles = []
    if "baseline" in variants:
        handles.append(Line2D([], [], color="#555555", linestyle="--", label="baseline mean"))
    if any(name != "baseline" for name in names):
        handles.append(Patch(color=_COLOURS["adapted"], label="adapted"))
    if any(row.get("below_baseline") for name, row in variants.items() if name != "baseline"):
        handles.append(
            Patch(
                color=_COLOURS["below baseline"],
                label="below baseline on dev by more than the spread",
            )
        )
    return handles
