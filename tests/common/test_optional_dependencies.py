import pytest

from dapt_plugin.common.optional_dependencies import MissingDependency, optional_dependency


def test_a_missing_optional_dependency_names_what_needs_it_and_how_to_install_it():
    with pytest.raises(MissingDependency) as error:
        with optional_dependency("TAPT data selection", "faiss", "faiss-cpu", extra="selection"):
            import dapt_plugin_no_such_module  # noqa: F401
    assert str(error.value) == (
        "TAPT data selection needs faiss: pip install faiss-cpu (or the plugin's `selection` extra)"
    )
    assert isinstance(error.value, ImportError)
    assert isinstance(error.value.__cause__, ModuleNotFoundError)


def test_a_dependency_in_no_extra_names_the_package_alone():
    with pytest.raises(
        MissingDependency, match=r"^the results plot needs matplotlib: pip install matplotlib$"
    ):
        with optional_dependency("the results plot", "matplotlib"):
            import dapt_plugin_no_such_module  # noqa: F401
