"""
Drawing an experiment's pictures (`results.png`, `mlm_loss.png`) with `plot.py` where matplotlib
can be imported; where it cannot, a picture of an earlier run is removed, since it would not show
these results, and a warning says why there is none.
"""

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def draw(path: Path, function: str, *data: Any) -> None:
    """Writes `path` with `plot.<function>(*data, path)`, or removes it and warns (see above)."""
    try:
        from dapt_plugin.experiment import plot
    except ImportError as error:
        path.unlink(missing_ok=True)
        logger.warning("%s; %s was not drawn", error, path.name)
        return
    getattr(plot, function)(*data, str(path))
