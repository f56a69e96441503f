"""
Imports of packages that an install can lack: faiss (the plugin's `selection` extra), and
matplotlib where the plugin was installed without its dependencies. An import of one that is not
installed fails with what needs it and the command that installs it.
"""

import contextlib
from typing import Iterator, Optional


class MissingDependency(ImportError):
    """A package that an install can lack is not importable; the message says what needs it."""


@contextlib.contextmanager
def optional_dependency(
    purpose: str, module: str, package: Optional[str] = None, extra: Optional[str] = None
) -> Iterator[None]:
    """
    Turns an `ImportError` of the imports in the block into a `MissingDependency` that names
    what needs `module` and how to install it (`package`, by default `module`, or the plugin's
    `extra`), e.g. "TAPT data selection needs faiss: pip install faiss-cpu (or the plugin's
    `selection` extra)".
    """
    try:
        yield
    except ImportError as error:
        alternative = f" (or the plugin's `{extra}` extra)" if extra else ""
        raise MissingDependency(
            f"{purpose} needs {module}: pip install {package or module}{alternative}"
        ) from error
