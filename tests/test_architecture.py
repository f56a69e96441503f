"""
The layering of `docs/ARCHITECTURE.md`: which package of `dapt_plugin` may import which. The
allowed arrows are written once, here (`LAYERS`, `BESIDE`, `ARROWS`), and the tables of
`docs/ARCHITECTURE.md` must show them as they are. Every `import` in the package counts,
those inside functions (lazy imports) included. The source is parsed, not imported.
"""

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from tests.conftest import PROJECT_ROOT

# Top to bottom. A package may import its own modules and the packages of every layer below its
# own; packages of one layer are independent of each other, except for the `ARROWS` below.
LAYERS: List[List[str]] = [
    ["dapt_plugin"],  # `dapt_plugin/__init__.py`: what `import dapt_plugin` runs
    ["commands"],
    ["experiment", "selection", "overlap", "export", "predictors", "demo"],
    ["models", "training"],
    ["data", "nn"],
    ["common", "version"],
]
# Outside the layers: no layer may import them; only the `ARROWS` below reach them.
BESIDE: List[str] = ["compat", "testing", "training_config"]
# Every import the layering above does not allow, with the reason it is allowed anyway.
ARROWS: List[Tuple[str, str, str]] = [
    ("dapt_plugin", "compat", "`import dapt_plugin` applies the patches before anything else"),
    ("compat", "common", "the logic each patch calls lives in `common`"),
    ("compat", "data", "the one-line error report recognises `DataError` (`data/text_files.py`)"),
    (
        "experiment",
        "selection",
        "`allennlp adapt` runs the kNN-TAPT/RAND-TAPT selection as a phase",
    ),
    ("demo", "experiment", "the demo runs its experiment as `allennlp adapt` does"),
    (
        "demo",
        "testing",
        "the demo's base model is the tests' tiny RoBERTa, its words their pseudo-words",
    ),
    (
        "models",
        "training",
        "`dapt_masked_lm` counts its metrics with `training/metrics`, as allennlp places metrics",
    ),
    ("testing", "common", "the kill tests start runs with `common/launch.py`"),
]

PACKAGE = PROJECT_ROOT / "dapt_plugin"
ARCHITECTURE = PROJECT_ROOT / "docs" / "ARCHITECTURE.md"


def allowed() -> Dict[str, Set[str]]:
    """For each package, the other packages it may import."""
    may: Dict[str, Set[str]] = {name: set() for name in BESIDE}
    for depth, layer in enumerate(LAYERS):
        below = {name for lower in LAYERS[depth + 1 :] for name in lower}
        for name in layer:
            may[name] = set(below)
    for importer, imported, _ in ARROWS:
        may[importer].add(imported)
    return may


def package_of(module: str) -> str:
    """`dapt_plugin.data.token_cache` -> `data`; `dapt_plugin` -> `dapt_plugin`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def sources() -> Iterator[Tuple[str, Path]]:
    """(module name, file) of every Python file of the package, its shipped configs included."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path
    # `training_config/` is installed as the package `dapt_plugin.training_config` (setup.py)
    for path in sorted((PROJECT_ROOT / "training_config").rglob("*.py")):
        parts = ["dapt_plugin", *path.relative_to(PROJECT_ROOT).with_suffix("").parts]
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported_modules(module: str, source: str, is_package: bool) -> Iterator[Tuple[int, str]]:
    """(line, module) of every import of `dapt_plugin` modules in `source`, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up `level - 1` more
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "dapt_plugin":  # `from dapt_plugin import data, models`
                for alias in node.names:
                    yield node.lineno, f"dapt_plugin.{alias.name}"
            else:
                yield node.lineno, base


def crossings(files: List[Tuple[str, str, bool]]) -> List[str]:
    """
    Every import in `files` (module name, source, whether it is a package's `__init__`) that the
    allowed arrows do not allow, as "file:line: package -> package (module)".
    """
    may = allowed()
    found = []
    for module, source, is_package in files:
        importer = package_of(module)
        for line, target in imported_modules(module, source, is_package):
            if target != "dapt_plugin" and not target.startswith("dapt_plugin."):
                continue
            imported = package_of(target)
            if imported == importer or imported in may.get(importer, set()):
                continue
            found.append(f"{module}:{line}: {importer} -> {imported} ({target})")
    return found


def _tree() -> List[Tuple[str, str, bool]]:
    return [
        (module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for module, path in sources()
    ]


def test_no_import_crosses_the_allowed_arrows():
    assert crossings(_tree()) == []


def test_every_package_has_its_place_in_the_layering():
    packages = {package_of(module) for module, _ in sources()}
    placed = [name for layer in LAYERS for name in layer] + BESIDE
    assert sorted(placed) == sorted(set(placed))  # each package in one place
    assert packages == set(placed)
    assert all(a in placed and b in placed for a, b, _ in ARROWS)


def test_an_upward_import_fails_even_inside_a_function():
    lazy_upward = "def f():\n    from dapt_plugin.experiment.runner import run_experiment\n"
    relative_upward = "from ..commands import adapt\n"
    sideways = "import dapt_plugin.selection.tapt_selection\n"
    assert crossings(
        [
            ("dapt_plugin.data.token_cache", lazy_upward, False),
            ("dapt_plugin.nn.masking", relative_upward, False),
            ("dapt_plugin.overlap", sideways, True),
            ("dapt_plugin.demo.run", "from dapt_plugin.testing.text import write_lines\n", False),
            (
                "dapt_plugin.models.dapt_masked_lm",
                "from dapt_plugin.training import metrics",
                False,
            ),
            ("dapt_plugin.training.model_card", "from dapt_plugin import models, version\n", False),
        ]
    ) == [
        "dapt_plugin.data.token_cache:2: data -> experiment (dapt_plugin.experiment.runner)",
        "dapt_plugin.nn.masking:1: nn -> commands (dapt_plugin.commands)",
        "dapt_plugin.overlap:1: overlap -> selection (dapt_plugin.selection.tapt_selection)",
        "dapt_plugin.training.model_card:1: training -> models (dapt_plugin.models)",
    ]


def _table(text: str, header: str) -> List[List[str]]:
    """The rows (cells, stripped) of the markdown table of `text` that starts with `header`."""
    rows = text[text.index(header) :].split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]


def _names(cell: str) -> List[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_architecture_document_shows_the_allowed_arrows():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    layers = _table(text, "| layer | packages |")
    assert [_names(packages) for _, packages in layers] == [*LAYERS, BESIDE]
    arrows = _table(text, "| from | to | why |")
    assert [(_names(a)[0], _names(b)[0], why) for a, b, why in arrows] == ARROWS
