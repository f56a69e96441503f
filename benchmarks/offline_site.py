"""
For a machine without network access whose own Python already has PyTorch (its CUDA build): a
GPU server or cluster node on which to run `benchmarks/gpu.py`. Packs what the plugin and the
benchmarks import and that machine's Python lacks, or holds at a version they cannot use, into
one archive to unpack there and put on `PYTHONPATH`.

Here, with that machine's `python3 -m pip list --format=freeze` in `target.txt` (`NAME==VERSION`
lines; a line with a name alone says the package is there at a version not known):

    .venv/bin/python benchmarks/offline_site.py target.txt --python-version 3.12 [--strip]
        [--glibc 2.28] [-o site.tar.xz]

There, in a copy of this repository (nothing to install; the archive's packages come first):

    mkdir -p /tmp/site && tar -xJf site.tar.xz -C /tmp/site
    PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu.py

What is packed: the distribution of every module that importing the plugin (with its commands
and components), allennlp's commands, the Trainer's side of the benchmarks and `gpu.py` loads
here (`needed_distributions`), but the GPU stack (torch, torchvision, triton, NVIDIA's and
CUDA's packages), which must be the machine's own build. Each of those that the machine has is
left to it if its version there meets every requirement that the plugin and the packed
distributions place on it (allennlp's metadata is not read: its pins are stale, which is why it
is installed with `--no-deps`), or, where its version is not known, if none of them bounds it
from above; the others are packed, at this environment's version
(transformers, for one, at the version allennlp runs with). Wheels for the machine's Python and
platform (`pip download`; a source distribution is built here into a wheel, which must be pure
Python); installed with `pip install --target`. `--strip` removes the symbol tables of the
shared libraries (a third of their size here; the code is the same). The machine's torch must
meet the plugin's requirement (`torch>=2.6`), or the script stops.

It runs on x86-64 Linux, for an x86-64 Linux machine, in this project's environment with the
plugin installed (`make install`: its requirements are read from its metadata). A module of a
namespace package (`google.*`) counts for every distribution that shares the namespace, so a few
more distributions may be packed than the imports need.
"""

import argparse
import importlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from dapt_plugin.common.atomic import atomic_path

PLUGIN = "dapt_plugin"
# besides the plugin, imported as `--include-package dapt_plugin` imports it (every module), what
# `gpu.py`'s processes import: the script and its helpers, `allennlp train`, and the Trainer's
# worker (`mlm_throughput.hf_worker`)
MODULES = [
    "_gojsonnet",  # go-jsonnet: the plugin loads it at the first config it evaluates
    "allennlp.commands",
    "gpu",
    "mlm_throughput",
    "step_timer",
    "transformers.trainer",
    "transformers.data.data_collator",
    "transformers.models.roberta.modeling_roberta",
    "transformers.models.bert.modeling_bert",
]
# the machine's own build: a copy from here would not match its CUDA driver
GPU_STACK_PREFIXES = ("torch", "triton", "nvidia-", "cuda-")
# its metadata pins torch<1.13 and transformers<4.21 (see setup.py): its requirements are not read
NO_DEPS = {"allennlp"}
# glibc 2.N's older names of its manylinux tag
LEGACY_TAGS = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}


def is_gpu_stack(name: str) -> bool:
    return canonicalize_name(name).startswith(GPU_STACK_PREFIXES)


def needed_distributions(modules: Iterable[str] = MODULES) -> Dict[str, str]:
    """
    Name -> version of the installed distributions that provide the modules loaded once the
    plugin's modules and `modules` are imported, but the GPU stack and the plugin itself (the
    repository travels).
    """
    from allennlp.common.util import import_module_and_submodules

    import_module_and_submodules(PLUGIN)
    for module in modules:
        importlib.import_module(module)
    providers = importlib.metadata.packages_distributions()
    names = {
        canonicalize_name(distribution)
        for module in list(sys.modules)
        for distribution in providers.get(module.partition(".")[0], [])
    }
    return {
        name: importlib.metadata.version(name)
        for name in sorted(names)
        if not is_gpu_stack(name) and name != canonicalize_name(PLUGIN)
    }


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def read_target(path: Path) -> Dict[str, Optional[str]]:
    """
    The packages of a `pip list --format=freeze` file: name -> version (None for a name alone).
    """
    packages: Dict[str, Optional[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, equals, version = line.partition("==")
        name, version = name.split(" @ ")[0].strip(), version.strip()
        if not name or (equals and not _is_version(version)):
            sys.exit(f"{path}:{number}: {line!r} is neither NAME==VERSION nor NAME")
        packages[canonicalize_name(name)] = version or None
    return packages


def requirements(names: Iterable[str], python_version: str) -> List[Tuple[str, Requirement]]:
    """
    What the installed distributions `names` require on a machine with `python_version`, each
    with the name of the distribution that requires it.
    """
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    found = []
    for name in names:
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or marker.evaluate({**environment, "extra": ""}):
                found.append((name, requirement))
    return found


def bounds_above(requirement: Requirement) -> bool:
    """Whether `requirement` excludes versions above some version (`<`, `<=`, `==`, `~=`)."""
    return any(spec.operator in ("<", "<=", "==", "~=", "===") for spec in requirement.specifier)


def excludes(requirement: Requirement, version: Optional[str]) -> bool:
    """
    Whether `requirement` rules out the machine's `version` of what it requires; a version not
    known (None) is ruled out by an upper bound, since the version there may be above it.
    """
    if version is None:
        return bounds_above(requirement)
    return not requirement.specifier.contains(Version(version), prereleases=True)


def to_pack(
    needed: Dict[str, str], target: Dict[str, Optional[str]], python_version: str
) -> Dict[str, str]:
    """
    The names of `needed` to pack, each with the reason: those the target lacks, then, until no
    name is added, those that a requirement of the plugin or of a distribution packed excludes:
    at the target's version, or, where the target lists a name alone, by an upper bound (the
    version there may be above it).
    """
    packed = {name: "not there" for name in needed if name not in target}
    while True:
        failing = {}
        names = [PLUGIN, *sorted(packed.keys() - NO_DEPS)]
        for owner, requirement in requirements(names, python_version):
            name = canonicalize_name(requirement.name)
            if name not in needed or name in packed:
                continue
            version = target[name]
            if excludes(requirement, version):
                there = "version there unknown" if version is None else f"{version} there"
                failing.setdefault(name, f"{there}; {owner} requires {requirement}")
        if not failing:
            return packed
        packed.update(failing)


def check_torch(target: Dict[str, Optional[str]], path: Path, python_version: str) -> None:
    """Stops unless the machine's torch, which is not packed, meets the plugin's requirement."""
    for _, requirement in requirements([PLUGIN], python_version):
        if canonicalize_name(requirement.name) != "torch":
            continue
        if "torch" not in target:
            sys.exit(f"{path}: no torch; the machine's own build is used ({PLUGIN}: {requirement})")
        if excludes(requirement, target["torch"]):
            sys.exit(f"{path}: torch {target['torch']} there; {PLUGIN} requires {requirement}")


def platforms(glibc: str) -> List[str]:
    """
    pip's `--platform` tags of the x86-64 Linux wheels that run with `glibc` (pip matches them
    exactly).
    """
    major, _, minor = glibc.partition(".")
    if major != "2" or not minor.isdigit():
        sys.exit(f"--glibc: {glibc!r} is not a glibc version such as 2.28")
    tags = []
    for version in range(5, int(minor) + 1):
        tags.append(f"manylinux_2_{version}_x86_64")
        if version in LEGACY_TAGS:
            tags.append(f"{LEGACY_TAGS[version]}_x86_64")
    return tags


def pip(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *arguments], check=True)


def is_pure(wheel: Path) -> bool:
    """Whether a wheel runs on any Python 3 and platform (its name's ABI and platform tags)."""
    *_, python, abi, platform = wheel.stem.split("-")
    return abi == "none" and platform == "any" and python.startswith(("py3", "py2.py3"))


def build_site(
    pins: List[str], site: Path, python_version: str, glibc: str, work: Path
) -> List[str]:
    """
    Installs `pins` (`NAME==VERSION`) into `site` from wheels for the target, downloaded or, where
    only a source distribution is published, built here; returns the file names of those built.
    """
    options = ["--python-version", python_version, "--implementation", "cp"]
    for tag in platforms(glibc):
        options += ["--platform", tag]
    wheels = work / "wheels"
    # without --only-binary a source distribution comes where no wheel fits, which --no-deps allows
    pip("download", "--no-deps", "--dest", str(wheels), *options, *pins)
    built = []
    for source in sorted(path for path in wheels.iterdir() if path.suffix != ".whl"):
        before = set(wheels.glob("*.whl"))
        pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(source))
        for wheel in set(wheels.glob("*.whl")) - before:
            if not is_pure(wheel):
                sys.exit(
                    f"{source.name}: no wheel for Python {python_version} on x86-64 Linux with "
                    f"glibc {glibc}, and its source builds {wheel.name}, for this machine only"
                )
            built.append(wheel.name)
        source.unlink()
    pip(
        "install",
        "--no-index",
        "--find-links",
        str(wheels),
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        str(site),
        *options,
        *pins,
    )
    return built


def strip(site: Path) -> None:
    """Removes the symbol tables of the shared libraries in `site` (`strip --strip-unneeded`)."""
    if shutil.which("strip") is None:
        sys.exit("--strip needs the program `strip` (binutils), which is not on this PATH")
    libraries = [path for path in site.rglob("*.so*") if path.is_file() and not path.is_symlink()]
    for library in libraries:
        subprocess.run(["strip", "--strip-unneeded", str(library)], check=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path, help="the machine's `pip list --format=freeze`")
    parser.add_argument("--python-version", required=True, help="the machine's Python, e.g. 3.12")
    parser.add_argument(
        "--glibc", default="2.28", help="the machine's glibc version (ldd --version)"
    )
    parser.add_argument("--strip", action="store_true", help="strip the shared libraries")
    parser.add_argument("-o", "--output", type=Path, default=Path("site.tar.xz"))
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        sys.exit(f"--python-version: {args.python_version!r} is not a version such as 3.12")
    platforms(args.glibc)
    target = read_target(args.target)
    check_torch(target, args.target, args.python_version)
    needed = needed_distributions()
    packed = to_pack(needed, target, args.python_version)
    for name in sorted(needed):
        print(
            f"{name} {needed[name]}: "
            + (f"packed ({packed[name]})" if name in packed else "the machine's")
        )
    if not packed:
        sys.exit(f"nothing to pack: {args.target} holds every package at a usable version")
    with tempfile.TemporaryDirectory(prefix="dapt_offline_site_") as tmp:
        work, site = Path(tmp), Path(tmp) / "site"
        pins = [f"{name}=={needed[name]}" for name in sorted(packed)]
        built = build_site(pins, site, args.python_version, args.glibc, work)
        if args.strip:
            strip(site)
        with atomic_path(str(args.output)) as output, tarfile.open(output, "w:xz") as archive:
            for entry in sorted(site.iterdir()):
                archive.add(entry, arcname=entry.name)
    size = args.output.stat().st_size / 2**20
    print(
        f"{args.output}: {len(packed)} distributions, {size:.1f} MiB"
        + (f"; built here from source: {', '.join(built)}" if built else "")
    )


if __name__ == "__main__":
    main()
