from typing import Any, Dict, List, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

from dapt_plugin.data.text_files import expand_paths
from dapt_plugin.data.token_cache import file_sha256


@TrainerCallback.register("input_files_checkpoint")
class InputFilesCheckpoint(TrainerCallback):
    """
    Keeps in each checkpoint the SHA-256 of every file the run trains and validates on, as they
    were when the run started, and refuses `allennlp train --recover` when one has changed since
    (written over, or a glob or list that names other files): the resumed run would train on
    other text than its earlier steps did, end with weights no uninterrupted run gives, and its
    export would record the new files' hashes only. (`--recover` with another config is refused
    before: `compat._check_recovered_config`.) A file is hashed once per process, and a masked-LM
    corpus's hash is the one its tokenization cache's key already needs.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.

    Registered as a `TrainerCallback` with name "input_files_checkpoint".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        # `[path, sha256]` of each of the run's files when it started, in the order its data
        # paths name them; None until it starts or resumes
        self._files: Optional[List[List[str]]] = None

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        super().on_start(trainer, is_primary, **kwargs)
        files = [
            [path, file_sha256(path)]
            for loader in (trainer.data_loader, trainer._validation_data_loader)
            for data_path in [getattr(loader, "data_path", None)]
            if data_path
            for path in expand_paths(data_path)
        ]
        # by content only: a run started with relative paths may resume where it was moved to
        if self._files is not None and [h for _, h in self._files] != [h for _, h in files]:
            raise ConfigurationError(
                f"--recover: {_differences(self._files, files)} since the run in "
                f"{self.serialization_dir} started, so its earlier steps trained on other text; "
                "put the files back as they were, or start a new run in a new directory"
            )
        self._files = files

    def state_dict(self) -> Dict[str, Any]:
        return {"files": self._files}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._files = state_dict["files"]


def _differences(old: List[List[str]], new: List[List[str]]) -> str:
    """What differs between two lists of `[path, sha256]`, in words."""
    if len(old) != len(new):
        return (
            f"the data paths name {len(new)} file(s) ({', '.join(path for path, _ in new)}), not "
            f"the {len(old)} they named ({', '.join(path for path, _ in old)})"
        )
    return "; ".join(
        f"{path} has changed"
        for (path, new_hash), (_, old_hash) in zip(new, old)
        if new_hash != old_hash
    )
