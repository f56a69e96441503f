"""
`results.png` of `allennlp adapt`, drawn from hand-made results: what a reader takes in at a glance
(the baseline's line, each bar's value, a harmful adaptation marked).
"""

from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

from dapt_plugin.experiment.plot import draw_results, plot_results


def _row(dev: float, std: float, below_baseline: bool = False):
    scores = (dev - std, dev, dev + std)
    seeds = {
        str(seed): {"dev": {"accuracy": score}, "test": {"accuracy": score}}
        for seed, score in enumerate(scores)
    }
    return {
        "seeds": seeds,
        "dev": {"mean": dev, "std": std},
        "test": {"mean": dev, "std": std},
        "below_baseline": below_baseline,
    }


RESULTS = {
    "metric": "accuracy",
    "seeds": [0, 1, 2],
    "variants": {
        "baseline": _row(0.80, 0.010),
        "tapt": _row(0.83, 0.004),
        "knn_tapt": _row(0.70, 0.020, below_baseline=True),
    },
}


def test_the_plot_shows_the_baseline_the_values_and_marks_an_adaptation_that_hurt(tmp_path):
    figure = draw_results(RESULTS)
    dev, test = figure.axes[:2]
    assert dev.get_ylabel() == "accuracy (%)"
    for axes in (dev, test):
        dashed = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
        assert [line.get_ydata()[0] for line in dashed] == [80.0]  # the baseline's mean
        assert [text.get_text() for text in axes.texts] == [
            "80.0 ± 1.0",
            "83.0 ± 0.4",
            "70.0 ± 2.0",
        ]
        (bars,) = [c for c in axes.containers if isinstance(c, BarContainer)]
        colours = [to_hex(bar.get_facecolor()) for bar in bars]
        assert len(set(colours)) == 3  # baseline, adapted, below the baseline
        # the axis shows every seed's score and the spread
        bottom, top = axes.get_ylim()
        assert bottom <= 68.0 and top >= 84.0
    plot_results(RESULTS, str(tmp_path / "results.png"))
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert [path.name for path in tmp_path.iterdir()] == ["results.png"]  # no temporary left
