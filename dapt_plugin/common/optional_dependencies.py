"""
The optional dependencies of the plugin's `selection` extra (faiss, matplotlib): an import of one
that is not installed fails with what needs it and the command that installs it.
"""

import contextlib
from typing import Iterator, Optional


@contextlib.contextmanager
def optional_dependency(purpose: str, module: str, package: Optional[str] = None) -> Iterator[None]:
    """
    Turns an `ImportError` of the imports in the block into one that names what needs `module`
    and how to install it (`package`, by default `module`), e.g. "the results plot needs
    matplotlib: pip install matplotlib (or the plugin's `selection` extra)".
    """
    try:
        yield
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs {module}: pip install {package or module} "
            "(or the plugin's `selection` extra)"
        ) from error
