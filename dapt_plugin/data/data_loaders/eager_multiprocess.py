from typing import Any

from allennlp.common.checks import ConfigurationError
from allennlp.data.data_loaders.data_loader import DataLoader
from allennlp.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader
from allennlp.data.dataset_readers import DatasetReader, DatasetReaderInput
from allennlp.data.vocabulary import Vocabulary
from more_itertools import consume

from dapt_plugin.data.samplers.length_sorted import LengthSortedBatchSampler


@DataLoader.register("eager_multiprocess")
class EagerMultiProcessDataLoader(MultiProcessDataLoader):
    """
    AllenNLP's `multiprocess` data loader, reading all of its data as soon as it is given the
    vocabulary (`index_with`, which the trainer and `allennlp evaluate` call before the first
    batch) instead of when it is first iterated. As the validation loader of a run (AllenNLP uses
    it for the test data too), it makes a bad line, an undecodable file or a label never seen in
    training stop the run before the first optimizer step, not after the first epoch.

    The instances read are kept, as the `multiprocess` loader keeps them anyway, so nothing is
    read twice; with `max_instances_in_memory` set they are not kept, and the data is read once
    more for this check.

    # Parameters

    sort_by_length : `bool`, optional (default = `False`)
        Batches of `batch_size` texts cut from the data sorted by length, longest first (the
        `length_sorted` batch sampler), instead of in the data's order: for evaluation, where the
        order does not change a metric and batches of texts of one length compute almost no
        padding. `allennlp evaluate --predictions-output-file` then writes its lines (one per
        batch) in that order. Unlike a `batch_sampler` in the config, it keeps `allennlp evaluate
        --batch-size` working. Requires `batch_size`; excludes `batch_sampler`, `shuffle` and
        `drop_last`.

    Takes the parameters of the `multiprocess` data loader besides.

    Registered as a `DataLoader` with name "eager_multiprocess".
    """

    def __init__(
        self,
        reader: DatasetReader,
        data_path: DatasetReaderInput,
        *,
        batch_size: int = None,
        sort_by_length: bool = False,
        **kwargs: Any,
    ) -> None:
        if sort_by_length:
            for excluded in ("batch_sampler", "shuffle", "drop_last"):
                if kwargs.get(excluded):
                    raise ConfigurationError(
                        f"data loader `eager_multiprocess`: `sort_by_length` orders the batches "
                        f"itself; remove `{excluded}` or set `sort_by_length: false`"
                    )
            if batch_size is None:
                raise ConfigurationError(
                    "data loader `eager_multiprocess`: `sort_by_length` needs `batch_size`"
                )
            kwargs["batch_sampler"] = LengthSortedBatchSampler(batch_size)
            batch_size = None
        super().__init__(reader, data_path, batch_size=batch_size, **kwargs)

    def index_with(self, vocab: Vocabulary) -> None:
        super().index_with(vocab)
        if not self._instances:
            consume(self.iter_instances())
