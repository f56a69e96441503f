"""
Where the plugin's training configs are. `training_config/` at the top of the repository is
installed as the package `dapt_plugin.training_config` (setup.py), so a clone with an editable
install and a wheel install find the configs the same way, through `importlib.resources`;
`allennlp dapt-configs` shows them to users, or copies them.
"""

import importlib.resources
import os
import shutil
from pathlib import Path

from allennlp.common.checks import ConfigurationError

from dapt_plugin.common.atomic import atomic_directory, check_output_directory

CONFIG_PACKAGE = "dapt_plugin.training_config"
# Set by `allennlp adapt` in each training phase's environment: the jsonnet config that the
# phase's config file (its resolved JSON under `.phases/configs/`) was resolved from, which an
# export's card names in its command, with the variables that jsonnet reads.
CONFIG_SOURCE_VARIABLE = "DAPT_PLUGIN_CONFIG_SOURCE"


def config_dir() -> Path:
    """The configs' directory: dapt.jsonnet, tapt.jsonnet, classifier.jsonnet, lib/, experiments/"""
    try:
        directory = importlib.resources.files(CONFIG_PACKAGE)
    except ModuleNotFoundError:
        # an editable install made before the configs became a package maps only `dapt_plugin`
        raise ConfigurationError(
            f"the plugin's configs (package {CONFIG_PACKAGE}) are not installed; reinstall the "
            "plugin (`make install`, or `pip install -e .` in the clone)"
        ) from None
    if not isinstance(directory, Path):  # a zipped install: jsonnet imports need real files
        raise ConfigurationError(
            f"the plugin's configs are not files on disk ({directory}); "
            "install dapt_plugin unzipped, as pip does"
        )
    return directory


def copy_configs(output_dir: str, force: bool = False) -> Path:
    """
    Copies the configs (jsonnet and libsonnet files, in their folders) to `output_dir`, completely
    or not at all, and returns the directory they came from. An `output_dir` that holds anything
    is replaced only with `force`.
    """
    source = config_dir()
    check_output_directory(output_dir, force, [str(source)])
    os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
    with atomic_directory(output_dir) as directory:
        shutil.copytree(
            source,
            directory,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("*.py", "*.pyc", "__pycache__"),
        )
    return source
