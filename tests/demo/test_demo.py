"""
`make demo`'s experiment file. The demo itself (six minutes on 2 cores) is not part of the suite;
this checks that its experiment file passes `allennlp adapt`'s checks on the data it generates.
"""

from dapt_plugin.demo.data import generate_demo
from dapt_plugin.demo.run import demo_experiment
from dapt_plugin.experiment.spec import load_experiment


def test_demo_experiment_is_valid_on_the_generated_data(tiny_model, tmp_path, monkeypatch):
    paths = generate_demo(tmp_path / "data")
    (tmp_path / "base_model").mkdir()
    (tmp_path / "base_model" / "exported_model").symlink_to(tiny_model, target_is_directory=True)
    monkeypatch.setenv("DEMO_DIR", str(tmp_path))
    spec = load_experiment(str(demo_experiment()))
    assert spec.variants == ["baseline", "dapt", "tapt", "dapt_tapt"] and len(spec.seeds) == 3
    assert spec.tapt_extra == [str(paths["unlabeled"])]
    assert spec.task["test"] == str(paths["test"])
