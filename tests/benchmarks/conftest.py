"""
The benchmarks' modules are imported as their scripts import each other, by file name
(`from _flops import ...`) with `benchmarks/` on the path: the package name `benchmarks` is
taken by one that fairscale installs.
"""

import sys

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
