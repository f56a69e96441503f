"""
Runs an experiment of `allennlp adapt`: the phases of the paper's Table 5 (and Table 8) with the
project's own training configs, sharing work between variants, resumable, and summarised in
`results.json` and `results.md`.

Phases and the work they share:

- `dapt`: one DAPT run on the domain corpus, used by both `dapt` and `dapt_tapt`;
- `tapt`, `dapt_tapt`, `knn_tapt`, `rand_tapt`: one TAPT run each (TAPT does not depend on the
  fine-tuning seed), from the base model or, for `dapt_tapt`, from the DAPT export;
- `select_knn`, `select_random`: the kNN-TAPT selection and its same-size random control;
- `classifier/<variant>/seed_<s>`: one fine-tuning run per variant and seed, then its evaluation
  on dev and test (`allennlp evaluate` semantics, in-process).

Each training phase runs `allennlp train` in a subprocess, in its own serialization directory
under the output directory. Re-running the same command skips every phase whose outputs are
complete, resumes an interrupted training phase with `--recover` when it has a checkpoint (and
starts it over when it has none), and records what it did in `phases.jsonl`.
"""
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from dapt_plugin.experiment.spec import ExperimentSpec

logger = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parent.parent.parent / "training_config"
_TAPT_SOURCE = {"tapt": None, "dapt_tapt": None, "knn_tapt": "select_knn", "rand_tapt": "select_random"}
# the phases that adapt each variant's encoder, for its wall time
_ADAPTATION = {
    "baseline": [], "dapt": ["dapt"], "tapt": ["tapt"], "dapt_tapt": ["dapt", "dapt_tapt"],
    "knn_tapt": ["select_knn", "knn_tapt"], "rand_tapt": ["select_knn", "select_random", "rand_tapt"],
}


@dataclass
class Phase:
    name: str
    directory: Path
    run: Callable[["Phase"], None]
    done: Callable[["Phase"], bool]


class ExperimentRunner:
    """
    # Parameters

    spec : `ExperimentSpec`
        The checked experiment.
    output_dir : `str`
        Where every phase's directory, `results.json`, `results.md` and `phases.jsonl` go.
    """

    def __init__(self, spec: ExperimentSpec, output_dir: str) -> None:
        self.spec = spec
        self.output = Path(output_dir).resolve()
        self.phases = self._plan()

    # -- the plan ---------------------------------------------------------------------------

    def encoder(self, variant: str) -> str:
        """`MODEL_NAME` of a variant's classifier."""
        if variant == "baseline":
            return self.spec.base_model
        return str(self.output / variant / "exported_model")

    def _plan(self) -> List[Phase]:
        variants = self.spec.variants
        phases: List[Phase] = []
        mlm_done = lambda p: all((p.directory / f).exists() for f in ("model.tar.gz", "metrics.json", "exported_model"))  # noqa: E731
        if {"dapt", "dapt_tapt"} & set(variants):
            phases.append(Phase("dapt", self.output / "dapt", self._run_dapt, mlm_done))
        if {"knn_tapt", "rand_tapt"} & set(variants):
            phases.append(Phase("select_knn", self.output / "selection" / "knn_tapt.jsonl",
                                self._run_selection, lambda p: p.directory.exists()))
        if "rand_tapt" in variants:
            phases.append(Phase("select_random", self.output / "selection" / "rand_tapt.jsonl",
                                self._run_selection, lambda p: p.directory.exists()))
        for variant in ("tapt", "dapt_tapt", "knn_tapt", "rand_tapt"):
            if variant in variants:
                phases.append(Phase(variant, self.output / variant, self._run_tapt, mlm_done))
        for variant in variants:
            for seed in self.spec.seeds:
                phases.append(Phase(
                    f"classifier/{variant}/seed_{seed}", self.output / "classifier" / variant / f"seed_{seed}",
                    self._run_classifier,
                    lambda p: all((p.directory / f).exists() for f in ("model.tar.gz", "dev_metrics.json", "test_metrics.json")),
                ))
        return phases

    # -- running ----------------------------------------------------------------------------

    def run(self) -> Dict:
        """Runs every phase not yet complete, then writes and returns the results."""
        self.output.mkdir(parents=True, exist_ok=True)
        times = self._load_times()
        for number, phase in enumerate(self.phases, start=1):
            if phase.done(phase):
                logger.info("phase %d of %d: %s is complete, skipped", number, len(self.phases), phase.name)
                self._record(phase, "skipped", 0.0)
                continue
            logger.info("phase %d of %d: %s", number, len(self.phases), phase.name)
            start = time.time()
            phase.run(phase)
            times[phase.name] = times.get(phase.name, 0.0) + time.time() - start
            (self.output / "phase_times.json").write_text(json.dumps(times, indent=2))
            self._record(phase, "ran", time.time() - start)
            if phase.name.startswith("classifier/"):
                dev = json.loads((phase.directory / "dev_metrics.json").read_text())
                logger.info("%s: dev %s %.4f", phase.name, self.spec.metric, dev[self.spec.metric])
        results = self.results(times)
        (self.output / "results.json").write_text(json.dumps(results, indent=2))
        (self.output / "results.md").write_text(self.table(results))
        return results

    def _load_times(self) -> Dict[str, float]:
        path = self.output / "phase_times.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _record(self, phase: Phase, action: str, seconds: float) -> None:
        with open(self.output / "phases.jsonl", "a") as log:
            log.write(json.dumps({"phase": phase.name, "action": action, "seconds": round(seconds, 2)}) + "\n")

    def _train(self, phase: Phase, config: str, env: Dict[str, str]) -> None:
        """`allennlp train` in a subprocess; an interrupted earlier attempt is recovered or restarted."""
        command = [sys.executable, "-m", "allennlp", "train", str(CONFIGS / config), "-s", str(phase.directory)]
        if phase.directory.exists():
            if any(phase.directory.glob("model_state_e*_b*.th")):
                logger.info("%s was interrupted; recovering it from its last checkpoint", phase.name)
                command.append("--recover")
                self._record(phase, "recovering", 0.0)
            else:
                shutil.rmtree(phase.directory)
        phase.directory.parent.mkdir(parents=True, exist_ok=True)
        with open(self.output / "train.log", "a") as log:
            log.write(f"\n===== {phase.name}: {' '.join(command)}\n")
            log.flush()
            completed = subprocess.run(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        if completed.returncode != 0:
            raise RuntimeError(f"phase {phase.name} failed (exit {completed.returncode}); its log is in "
                               f"{self.output / 'train.log'} and {phase.directory / 'out.log'}")

    def _run_dapt(self, phase: Phase) -> None:
        self._train(phase, "dapt.jsonnet", {
            **self.spec.env("dapt"), "MODEL_NAME": self.spec.base_model, "CORPUS_PATH": self.spec.domain_corpus,
        })

    def _run_tapt(self, phase: Phase) -> None:
        start = str(self.output / "dapt" / "exported_model") if phase.name == "dapt_tapt" else self.spec.base_model
        extra = list(self.spec.tapt_extra)
        if _TAPT_SOURCE[phase.name]:
            extra.append(str(self._phase(_TAPT_SOURCE[phase.name]).directory))
        self._train(phase, "tapt.jsonnet", {
            **self.spec.env("tapt"), "MODEL_NAME": start, "TAPT_PATH": self.spec.task["train"],
            "EXTRA_TAPT_PATHS": ",".join(extra),
        })

    def _run_selection(self, phase: Phase) -> None:
        from dapt_plugin.data.tapt_selection import select_tapt_data

        if phase.name == "select_knn":
            select_tapt_data(self.spec.task["train"], self.spec.domain_corpus, str(phase.directory), k=self.spec.knn_k)
        else:
            with open(self._phase("select_knn").directory) as selected:
                size = sum(1 for _ in selected)
            select_tapt_data(self.spec.task["train"], self.spec.domain_corpus, str(phase.directory),
                             method="random", size=size)

    def _run_classifier(self, phase: Phase) -> None:
        from allennlp.commands.evaluate import evaluate_from_archive

        variant, seed = phase.name.split("/")[1], phase.name.split("_")[-1]
        encoder = self.encoder(variant)
        if not (phase.directory / "model.tar.gz").exists():
            self._train(phase, "classifier.jsonnet", {
                **self.spec.env("classifier"), "MODEL_NAME": encoder, "SEED": seed,
                "TRAIN_PATH": self.spec.task["train"], "DEV_PATH": self.spec.task["dev"],
                "HIDDEN_SIZE": str(self._hidden_size(encoder)),
            })
        for split in ("dev", "test"):
            evaluate_from_archive(str(phase.directory / "model.tar.gz"), self.spec.task[split],
                                  metrics_output_file=str(phase.directory / f"{split}_metrics.json"))

    def _phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    @staticmethod
    def _hidden_size(model_name: str) -> int:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model_name).hidden_size

    # -- results ----------------------------------------------------------------------------

    def results(self, times: Dict[str, float]) -> Dict:
        metric = self.spec.metric
        variants = {}
        for variant in self.spec.variants:
            runs = {}
            for seed in self.spec.seeds:
                directory = self.output / "classifier" / variant / f"seed_{seed}"
                runs[str(seed)] = {split: json.loads((directory / f"{split}_metrics.json").read_text())
                                   for split in ("dev", "test")}
            summary = {}
            for split in ("dev", "test"):
                values = [runs[str(s)][split][metric] for s in self.spec.seeds]
                summary[split] = {"mean": statistics.fmean(values),
                                  "std": statistics.stdev(values) if len(values) > 1 else 0.0}
            variants[variant] = {
                "seeds": runs, **summary,
                "adaptation_seconds": sum(times.get(name, 0.0) for name in _ADAPTATION[variant]),
                "fine_tuning_seconds": sum(times.get(f"classifier/{variant}/seed_{s}", 0.0) for s in self.spec.seeds),
            }
        return {"metric": metric, "seeds": self.spec.seeds, "variants": variants, "phase_seconds": times,
                "output_dir": str(self.output)}

    @staticmethod
    def table(results: Dict) -> str:
        metric = results["metric"]
        lines = [
            f"| variant | dev {metric} | test {metric} | adaptation time | fine-tuning time ({len(results['seeds'])} seeds) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for variant, row in results["variants"].items():
            lines.append(
                f"| {variant} | {100 * row['dev']['mean']:.1f} ± {100 * row['dev']['std']:.1f} "
                f"| {100 * row['test']['mean']:.1f} ± {100 * row['test']['std']:.1f} "
                f"| {row['adaptation_seconds']:.0f} s | {row['fine_tuning_seconds']:.0f} s |"
            )
        return "\n".join(lines) + "\n"


def run_experiment(spec: ExperimentSpec, output_dir: str) -> Dict:
    """Runs (or resumes) `spec` in `output_dir`; prints the table and where the results are."""
    runner = ExperimentRunner(spec, output_dir)
    results = runner.run()
    print(runner.table(results))
    print(f"Results: {runner.output / 'results.json'} and {runner.output / 'results.md'}; runs under {runner.output}")
    return results
