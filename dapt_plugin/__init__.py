"""
dapt_plugin: "Don't Stop Pretraining" (Gururangan et al., ACL 2020) as an AllenNLP plugin.

AllenNLP imports this package (through `.allennlp_plugins`, the global plugins file or
`--include-package dapt_plugin`) but not necessarily its submodules. Importing it patches allennlp
(`compat.py`) and imports every subpackage that registers components; each subpackage's
`__init__` imports its own components (`tests/test_registration.py` checks that every
`@...register(...)` in the package is reachable from here).
"""

from dapt_plugin import compat
from dapt_plugin.version import VERSION as __version__  # noqa: F401

compat.apply_patches()

from dapt_plugin import commands, data, models, predictors, training  # noqa: E402,F401
