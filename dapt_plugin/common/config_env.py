"""
Optional environment variables in jsonnet configs.

Jsonnet's `std.extVar` fails on any unset variable and has no default, so a config that reads
its sizes from the environment would need every one of them set. AllenNLP hands the environment
to jsonnet as external variables; this module adds one more, `DAPT_PLUGIN_ENV`, holding the whole
environment as a JSON object, which `training_config/lib/env.libsonnet` reads to give defaults
and to name a missing required variable in its error.
"""
import json
from typing import Dict

from allennlp.common import params

ENV_EXT_VAR = "DAPT_PLUGIN_ENV"


def install() -> None:
    original = params._environment_variables
    if getattr(original, "_dapt_plugin_patched", False):
        return

    def environment_variables() -> Dict[str, str]:
        variables = original()
        variables[ENV_EXT_VAR] = json.dumps(variables)
        return variables

    environment_variables._dapt_plugin_patched = True  # type: ignore[attr-defined]
    params._environment_variables = environment_variables
