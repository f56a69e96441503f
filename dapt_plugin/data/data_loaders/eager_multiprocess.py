from allennlp.data.data_loaders.data_loader import DataLoader
from allennlp.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader
from allennlp.data.vocabulary import Vocabulary
from more_itertools import consume


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

    Takes the parameters of the `multiprocess` data loader.

    Registered as a `DataLoader` with name "eager_multiprocess".
    """

    def index_with(self, vocab: Vocabulary) -> None:
        super().index_with(vocab)
        if not self._instances:
            consume(self.iter_instances())
