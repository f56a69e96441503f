"""
`benchmarks/offline_site.py`'s choice of what to pack for a machine without network access; the
downloads and the archive are not run here (they need a package index).
"""

import importlib.metadata

import pytest


@pytest.fixture(scope="module")
def needed():
    import offline_site

    return offline_site.needed_distributions()


def test_what_the_plugin_and_the_benchmarks_import_but_the_gpu_stack(needed):
    import offline_site

    assert needed["transformers"] == importlib.metadata.version("transformers")
    assert {"allennlp", "spacy", "jsonnet", "cached-path", "accelerate", "tokenizers"} <= set(
        needed
    )
    assert not [name for name in needed if offline_site.is_gpu_stack(name)]
    assert "torch" not in needed and "dapt-plugin" not in needed  # the repository travels


def test_packed_what_is_missing_and_what_a_requirement_excludes(needed, tmp_path):
    import offline_site

    assert {"spacy", "transformers", "tokenizers", "requests", "psutil"} <= set(needed)
    # the machine has what is needed at this environment's versions, but for these
    different = {"transformers": "5.17.0", "tokenizers": "0.23.2", "requests": "", "psutil": ""}
    lines = [
        f"{name}=={different.get(name, version)}" if different.get(name, version) else name
        for name, version in needed.items()
        if name != "spacy"
    ]
    target = tmp_path / "freeze.txt"
    target.write_text("# pip list --format=freeze\n" + "\n".join(lines) + "\ntorch==2.11.0\n")
    assert offline_site.to_pack(needed, offline_site.read_target(target), "3.12") == {
        "spacy": "not there",
        "transformers": "5.17.0 there; dapt_plugin requires transformers<4.50,>=4.33",
        # once transformers and spacy are packed, what they require is checked
        "tokenizers": "0.23.2 there; transformers requires tokenizers<0.22,>=0.21",
        "requests": "version there unknown; spacy requires requests<3.0.0,>=2.13.0",
    }  # psutil, listed without a version too, is bounded by none of them


def test_the_machines_list_read_and_a_bad_line_named(tmp_path):
    import offline_site

    target = tmp_path / "freeze.txt"
    target.write_text("# comment\nNumPy==2.5.2\n\ntyping_extensions\nfoo @ file:///w/foo.whl\n")
    assert offline_site.read_target(target) == {
        "numpy": "2.5.2",
        "typing-extensions": None,
        "foo": None,
    }
    for bad in ("spacy==", "spacy==three"):
        target.write_text(f"numpy==2.5.2\n{bad}\n")
        with pytest.raises(SystemExit, match=rf"freeze.txt:2: '{bad}' is neither NAME==VERSION"):
            offline_site.read_target(target)


def test_platform_tags_up_to_the_machines_glibc():
    import offline_site

    tags = offline_site.platforms("2.28")
    assert {"manylinux1_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64"} <= set(tags)
    assert "manylinux_2_29_x86_64" not in tags
    with pytest.raises(SystemExit, match=r"--glibc: '3.1' is not a glibc version"):
        offline_site.platforms("3.1")


def test_only_a_wheel_for_any_python_3_and_platform_is_pure(tmp_path):
    import offline_site

    assert offline_site.is_pure(tmp_path / "fairscale-0.4.13-py3-none-any.whl")
    assert not offline_site.is_pure(tmp_path / "lmdb-3.0.0-cp311-cp311-linux_x86_64.whl")


def test_the_machines_torch_must_meet_the_plugins_requirement(tmp_path):
    import offline_site

    target = tmp_path / "freeze.txt"
    offline_site.check_torch({"torch": "2.11.0"}, target, "3.12")
    offline_site.check_torch({"torch": None}, target, "3.12")  # a name alone: taken as it is
    with pytest.raises(
        SystemExit, match=r"freeze.txt: torch 2.4.0 there; dapt_plugin requires torch>=2.6"
    ):
        offline_site.check_torch({"torch": "2.4.0"}, target, "3.12")
    with pytest.raises(SystemExit, match=r"freeze.txt: no torch; the machine's own build is used"):
        offline_site.check_torch({}, target, "3.12")
