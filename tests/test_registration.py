"""
Registration per subpackage: every `@<Base>.register("name")` written in `dapt_plugin/` is in
allennlp's registry after nothing but `import dapt_plugin`, which imports the subpackages, each of
which imports its own components. Checked in a fresh interpreter, so that nothing the tests
themselves import can make it pass.
"""

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.process  # the registry of a fresh interpreter


def _registrations_in_source():
    """`(base class, registered name, module, class)` of every register decorator in the package."""
    found = set()
    for path in sorted((PROJECT_ROOT / "dapt_plugin").rglob("*.py")):
        module = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if call and isinstance(call.func, ast.Attribute) and call.func.attr == "register":
                    assert isinstance(call.func.value, ast.Name) and isinstance(
                        call.args[0], ast.Constant
                    ), (
                        f"{path}: a register decorator this test cannot read: {ast.unparse(decorator)}"
                    )
                    found.add((call.func.value.id, call.args[0].value, module, node.name))
    return found


def test_every_registered_component_of_the_source_is_registered_by_importing_the_plugin(
    after_plugin_import,
):
    in_source = _registrations_in_source()
    assert len(in_source) >= 20  # the scan finds the decorators
    registered = {tuple(entry) for entry in after_plugin_import["registry"]}
    missing = sorted(in_source - registered)
    assert not missing, (
        "registered in the source but not by `import dapt_plugin` (import the module in its "
        f"subpackage's __init__.py): {missing}"
    )
