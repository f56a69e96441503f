import itertools
import logging
import math
import random
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data.data_loaders.data_loader import DataLoader, TensorDict
from allennlp.data.instance import Instance
from allennlp.data.vocabulary import Vocabulary
from allennlp.nn import util as nn_util

from dapt_plugin.common.distributed import rank, world_size
from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from dapt_plugin.data.samplers.seeded_bucket import check_padding_noise, noisy_length_order
from dapt_plugin.data.text_files import PathSpec
from dapt_plugin.data.tokenized_corpus import TokenizedCorpus

logger = logging.getLogger(__name__)


class EpochOrder:
    """
    The order of the examples in one pass over the data. Unshuffled, it is file order. Shuffled,
    with at most `window` examples, it is a uniform permutation. With more, the corpus is cut
    into blocks of `max(1, window // 1024)` consecutive examples, the blocks are visited in a
    random order, and each run of `window // block` blocks of that order (a window of about
    `window` examples, from all over the corpus; the pass's last window may hold fewer) is
    visited in a random order of its examples: a batch mixes the whole corpus, not one stretch
    of its files. Only the block order and the current window's permutation are held, so
    memory grows with the corpus by one integer per block.

    # Parameters

    num_examples : `int`
        Examples in the corpus.
    shuffle : `bool`
        Shuffle, or keep file order.
    seed : `int`
        Seed of the shuffle; the same seed and epoch give the same order.
    epoch : `int`
        Pass number; each pass has its own order.
    window : `int`
        Shuffle window, in examples.
    """

    def __init__(
        self, num_examples: int, shuffle: bool, seed: int, epoch: int, window: int
    ) -> None:
        self.shuffle = shuffle
        self.key = (seed, epoch)
        self.num_examples = num_examples
        if shuffle:
            # one window: one block, the whole corpus
            self.block = max(1, num_examples if num_examples <= window else window // 1024)
            blocks_per_window = max(1, window // self.block)
            rng = np.random.default_rng([seed, epoch])
            self.block_order = rng.permutation(-(-num_examples // self.block))
            sizes = np.minimum(self.block, num_examples - self.block_order * self.block)
            # the blocks of window k: block_order[block_starts[k]:block_starts[k + 1]]
            num_blocks = len(self.block_order)
            self.block_starts = np.append(np.arange(0, num_blocks, blocks_per_window), num_blocks)
            self.window_starts = np.concatenate([[0], np.cumsum(sizes)])[self.block_starts]
        self._current = (-1, np.zeros(0, dtype=np.int64))

    def _window(self, slot: int) -> np.ndarray:
        """The example indices of window `slot`, in the pass's order."""
        if self._current[0] != slot:
            blocks = self.block_order[self.block_starts[slot] : self.block_starts[slot + 1]]
            examples = np.concatenate(
                [
                    np.arange(b * self.block, min((b + 1) * self.block, self.num_examples))
                    for b in blocks.tolist()
                ]
            )
            rng = np.random.default_rng([*self.key, slot])
            self._current = (slot, examples[rng.permutation(len(examples))])
        return self._current[1]

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The example indices at `positions` (ascending) of this pass."""
        if not self.shuffle:
            return positions
        slots = np.searchsorted(self.window_starts, positions, side="right") - 1
        result = np.empty(len(positions), dtype=np.int64)
        for slot in np.unique(slots):
            chosen = slots == slot
            result[chosen] = self._window(int(slot))[positions[chosen] - self.window_starts[slot]]
        return result


def token_balanced_bounds(lengths: np.ndarray, num_batches: int) -> np.ndarray:
    """
    Where to cut examples of `lengths` (in order) into `num_batches` consecutive batches of about
    equal numbers of tokens: `num_batches + 1` ascending bounds from 0 to `len(lengths)`, each
    batch holding at least one example (`num_batches <= len(lengths)`). An example goes to the
    batch its middle token falls in, when the tokens are dealt out evenly.
    """
    ends = np.cumsum(lengths)
    middles = ends - np.asarray(lengths) / 2
    bounds = np.searchsorted(middles, ends[-1] * np.arange(num_batches + 1) / num_batches)
    for j in range(1, num_batches):  # at least one example each: forwards, then backwards
        bounds[j] = max(bounds[j], bounds[j - 1] + 1)
    for j in range(num_batches - 1, 0, -1):
        bounds[j] = min(bounds[j], bounds[j + 1] - 1)
    return bounds


class _Batches(torch.utils.data.IterableDataset):
    """Builds batch `g` for the global batch numbers `g` this data-loader worker owns."""

    def __init__(
        self, loader: "MaskedLmBatches", first_batch: int, num_batches: Optional[int]
    ) -> None:
        self.loader = loader
        self.first_batch = first_batch
        self.num_batches = num_batches

    def __iter__(self) -> Iterator[TensorDict]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stop = None if self.num_batches is None else self.first_batch + self.num_batches
        for number in itertools.islice(
            itertools.count(self.first_batch), worker, None, num_workers
        ):
            if stop is not None and number >= stop:
                return
            yield self.loader.batch(number)


@DataLoader.register("masked_lm_batches")
class MaskedLmBatches(DataLoader):
    """
    Batches masked-LM examples straight from the `masked_lm_corpus` reader's memory-mapped token
    cache: no `Instance`s, no fields, no vocabulary; a batch is a few array slices, so building
    one costs microseconds, and `--recover`'s replay of earlier batches is cheap.

    Batch number `g` (counted over the whole run) is a pure function of `g`, the seed and the
    corpus: pass `g // batches_per_pass` visits the examples in its own `EpochOrder`, each global
    batch holds `batch_size * world_size` consecutive examples of that order, and distributed worker `r`
    takes every `world_size`-th of them (with `group_by_length`, a part of its own), so the
    workers see disjoint parts and together all of the data. When the last global batch of a
    pass has fewer examples than workers, a worker with none left gets a row of special tokens
    only, which is never masked, so every example counts exactly once. Data-loader workers (`num_workers`)
    build whole batches in parallel and return them in order, so results do not depend on
    `num_workers`.

    # Parameters

    reader : `MaskedLmCorpusReader`
        Supplied from the config's `dataset_reader`; must be a `masked_lm_corpus` reader.
    data_path : `PathSpec`
        Supplied from `train_data_path` / `validation_data_path`.
    batch_size : `int`
        Examples per batch on each worker (on average, with `group_by_length`); the effective
        batch is `batch_size * world_size * num_gradient_accumulation_steps`.
    shuffle : `bool`, optional (default = `False`)
        Visit the examples in a new random order in every pass.
    group_by_length : `bool`, optional (default = `False`)
        Batch examples of similar length together, so that little of what is computed is
        padding. The examples of each `length_group_size` global batches of a pass (in its order,
        shuffled or not) are sorted by length (see `padding_noise`) and cut into a batch for each
        worker of each of those global batches, all with equal numbers of the tokens that can be
        masked (`token_balanced_bounds`); the global batches are taken in a random order. A batch
        of short lines therefore holds more examples than one of long lines, so that every token
        weighs about as much in its step's mean loss as in random batches of `batch_size`
        (equal numbers of examples would weigh a short line's tokens more). The passes, their
        batch counts and `--recover` are as without it; a worker may get no example only in the
        last group of a pass, when it has fewer examples than parts (see above). Only for
        modes whose examples differ in length (`line_by_line`, `document_windows`).
    length_group_size : `int`, optional (default = `50`)
        Global batches per length group: more gives less padding and batches of more uniform
        lengths (50 is the group of Hugging Face's `group_by_length`).
    padding_noise : `float`, optional (default = `0.1`, as the `seeded_bucket` sampler's)
        With `group_by_length`, each example is sorted by its length times a factor drawn anew
        in every pass from `[1 - padding_noise, 1 + padding_noise]`, so that a text of fewer
        examples than one group (all of them sorted together) is not cut into the same batches
        in every pass; `0` sorts by the exact length (the least padding). In `[0, 1)`.
    batches_per_epoch : `int`, optional (default = `None`)
        Batches per AllenNLP epoch. `None`: an epoch is one pass over the data. Otherwise the
        loader keeps going from where the previous epoch stopped (across passes), which is how a
        run is given a number of optimizer steps on a lazily read corpus.
    num_workers : `int`, optional (default = `0`)
        Background processes building batches.
    pad_to_multiple_of : `int`, optional (default = `8`)
        Pads each line-by-line batch to a multiple of this length (tensor-core friendly);
        never beyond the reader's `max_length`.
    shuffle_window : `int`, optional (default = `1_000_000`)
        The most examples shuffled at once: a corpus of more is shuffled in windows of this
        many, each mixing blocks from all over the corpus (see `EpochOrder`).
    seed : `int`, optional (default = `None`)
        Seed of the shuffling; `None` derives it from Python's random state, fixed by the
        config's `random_seed`.
    hold_out : `str`, optional (default = `None`)
        A held-out share of the data for measuring masked-LM loss when there is no separate
        held-out file: the examples of every `hold_out_every`-th document (at most
        `max_held_out` documents, spread evenly over the corpus; in `packed` mode, blocks).
        `"exclude"` batches every other example (training), `"only"` those (see
        `held_out_loader`); `None` uses all examples.
    hold_out_every : `int`, optional (default = `100`)
        One document in this many is held out (1%).
    max_held_out : `int`, optional (default = `2000`)
        At most this many documents are held out; a larger corpus holds out a smaller share.
    cuda_device : `int`, optional (default = `None`)
        Device of the batches; set by the trainer.

    Registered as a `DataLoader` with name "masked_lm_batches".
    """

    def __init__(
        self,
        reader: MaskedLmCorpusReader,
        data_path: PathSpec,
        batch_size: int,
        shuffle: bool = False,
        group_by_length: bool = False,
        length_group_size: int = 50,
        padding_noise: float = 0.1,
        batches_per_epoch: Optional[int] = None,
        num_workers: int = 0,
        pad_to_multiple_of: int = 8,
        shuffle_window: int = 1_000_000,
        seed: Optional[int] = None,
        hold_out: Optional[str] = None,
        hold_out_every: int = 100,
        max_held_out: int = 2000,
        cuda_device: Optional[int] = None,
    ) -> None:
        if not isinstance(reader, MaskedLmCorpusReader):
            raise ConfigurationError(
                f"the `masked_lm_batches` data loader needs the `masked_lm_corpus` dataset reader; got "
                f"{type(reader).__name__}"
            )
        if batch_size < 1:
            raise ConfigurationError(f"`batch_size` must be at least 1; got {batch_size}")
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ConfigurationError(
                f"`batches_per_epoch` must be at least 1, or null for one pass per epoch; got {batches_per_epoch}"
            )
        if num_workers < 0:
            raise ConfigurationError(f"`num_workers` must be at least 0; got {num_workers}")
        if shuffle_window < 1:
            raise ConfigurationError(f"`shuffle_window` must be at least 1; got {shuffle_window}")
        if pad_to_multiple_of < 1:
            raise ConfigurationError(
                f"`pad_to_multiple_of` must be at least 1; got {pad_to_multiple_of}"
            )
        if group_by_length and reader.mode == "packed":
            raise ConfigurationError(
                "`group_by_length` needs examples of different lengths, and every packed example "
                f"has max_length={reader.max_length} tokens: set GROUP_BY_LENGTH=false (the "
                "loader's `group_by_length`), or MLM_MODE=line_by_line or document_windows"
            )
        if length_group_size < 1:
            raise ConfigurationError(
                f"`length_group_size` must be at least 1; got {length_group_size}"
            )
        check_padding_noise(padding_noise)
        if hold_out not in (None, "exclude", "only"):
            raise ConfigurationError(
                f'`hold_out` must be "exclude", "only" or null; got {hold_out!r}'
            )
        if hold_out_every < 2 or max_held_out < 1:
            raise ConfigurationError(
                f"`hold_out_every` must be at least 2 and `max_held_out` at least 1; got "
                f"{hold_out_every} and {max_held_out}"
            )
        self.reader = reader
        self._pad_token_id = (
            reader.pad_token_id
        )  # the tokenizer's attribute lookup is slow, once per batch
        self.data_path = data_path
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.length_group_size = length_group_size
        self.padding_noise = padding_noise
        self.batches_per_epoch = batches_per_epoch
        self.num_workers = num_workers
        self.pad_to_multiple_of = pad_to_multiple_of
        self.shuffle_window = shuffle_window
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.hold_out = hold_out
        self.hold_out_every = hold_out_every
        self.max_held_out = max_held_out
        self._held_out: Optional[np.ndarray] = None
        self.cuda_device: Optional[torch.device] = None
        if cuda_device is not None:
            self.set_target_device(nn_util.int_to_device(cuda_device))
        self._corpus: Optional[TokenizedCorpus] = None
        self._next_batch = 0  # global batch number where the next epoch starts
        # (rank, world size) of the process that iterates, fixed by `__iter__` for the
        # data-loader workers it starts: they are outside the distributed process group
        self._place = (0, 1)
        self._order: Optional[EpochOrder] = None
        # group_by_length: the current group's key (seed, pass, group) and, for each of its
        # global batches, the examples of each worker
        self._group: Tuple[Tuple[int, int, int], List[List[np.ndarray]]] = ((-1, -1, -1), [])

    # -- the data ---------------------------------------------------------------------------

    @property
    def corpus(self) -> TokenizedCorpus:
        if self._corpus is None:
            self._corpus = self.reader.corpus(self.data_path)
        return self._corpus

    @property
    def held_out_examples(self) -> np.ndarray:
        """
        The examples held out (sorted corpus indices): those of every `stride`-th document, the
        stride at least `hold_out_every` and large enough to hold out at most `max_held_out`
        documents, so that no document is partly trained on and partly held out (in `packed`
        mode, whose blocks span documents, every `stride`-th block).
        """
        if self._held_out is None:
            corpus = self.corpus
            whole = len(corpus) if corpus.mode == "packed" else corpus.num_documents
            stride = max(self.hold_out_every, math.ceil(whole / self.max_held_out))
            chosen = np.arange(stride - 1, whole, stride, dtype=np.int64)
            self._held_out = (
                chosen if corpus.mode == "packed" else corpus.examples_of_documents(chosen)
            )
        return self._held_out

    @property
    def num_examples(self) -> int:
        """Examples this loader batches: all, all but the held-out ones, or those only."""
        if self.hold_out is None:
            return len(self.corpus)
        held_out = len(self.held_out_examples)
        return held_out if self.hold_out == "only" else len(self.corpus) - held_out

    @property
    def covered_share(self) -> float:
        """
        The share of the corpus's content tokens that one pass over this loader's examples covers:
        the corpus's `covered_share`, less the held-out documents' share when they are excluded.
        """
        corpus = self.corpus
        if self.hold_out is None:
            return corpus.covered_share
        held_out = corpus.content_tokens(self.held_out_examples)
        covered = held_out if self.hold_out == "only" else corpus.num_covered_tokens - held_out
        return covered / corpus.num_content_tokens

    def _corpus_indices(self, positions: np.ndarray) -> np.ndarray:
        """Corpus indices of the examples at `positions` of this loader's examples."""
        if self.hold_out == "only":
            return self.held_out_examples[positions]
        if self.hold_out == "exclude":
            # the p-th kept example is p plus the number of held-out examples before it
            held_out = self.held_out_examples
            return positions + np.searchsorted(
                held_out - np.arange(len(held_out)), positions, side="right"
            )
        return positions

    def held_out_loader(self) -> "MaskedLmBatches":
        """A loader of the examples this one holds out, in order (for measuring held-out loss)."""
        if self.hold_out != "exclude":
            raise ConfigurationError('this loader holds nothing out (`hold_out` is not "exclude")')
        loader = MaskedLmBatches(
            self.reader,
            self.data_path,
            self.batch_size,
            hold_out="only",
            seed=self.seed,
            hold_out_every=self.hold_out_every,
            max_held_out=self.max_held_out,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        if self.cuda_device is not None:
            loader.set_target_device(self.cuda_device)
        return loader

    def place(self) -> Tuple[int, int]:
        """
        This distributed worker's rank and the number of workers: those of this process, or, in
        a data-loader worker (`num_workers`), those of the process whose `__iter__` started it
        (a data-loader worker is outside the process group: started by `spawn`, which a
        distributed worker's children are, it would read itself as worker 0 of 1).
        """
        if torch.utils.data.get_worker_info() is not None:
            return self._place
        return rank(), world_size()

    @property
    def batches_per_pass(self) -> int:
        return math.ceil(self.num_examples / (self.batch_size * self.place()[1]))

    def batch_indices(self, number: int) -> np.ndarray:
        """Example indices of this worker's part of global batch `number`."""
        worker, world = self.place()
        epoch, position = divmod(number, self.batches_per_pass)
        if self._order is None or self._order.key != (self.seed, epoch):
            self._order = EpochOrder(
                self.num_examples, self.shuffle, self.seed, epoch, self.shuffle_window
            )
        if self.group_by_length:
            return self._grouped_part(epoch, position, worker)
        start = position * self.batch_size * world
        positions = np.arange(
            start + worker, min(start + self.batch_size * world, self.num_examples), world
        )
        return self._corpus_indices(self._order.take(positions))

    def _grouped_part(self, epoch: int, position: int, worker: int) -> np.ndarray:
        """`worker`'s examples of global batch `position` of pass `epoch`, by `group_by_length`."""
        group, slot = divmod(position, self.length_group_size)
        key = (self.seed, epoch, group)
        if self._group[0] != key:
            world = self.place()[1]
            first = group * self.length_group_size
            num_batches = min(self.length_group_size, self.batches_per_pass - first)
            per_batch = self.batch_size * world
            positions = np.arange(
                first * per_batch, min((first + num_batches) * per_batch, self.num_examples)
            )
            indices = self._corpus_indices(self._order.take(positions))
            lengths = np.array([len(self.corpus[int(i)]) for i in indices])
            # a stream of its own: EpochOrder draws from [seed, epoch] and [seed, epoch, slot],
            # and NumPy pads a shorter seed with zeros
            rng = np.random.default_rng([self.seed, epoch, group, 1])
            order = noisy_length_order(lengths, self.padding_noise, rng)
            # each global batch is `world` consecutive parts, one per worker, equal in the tokens
            # that can be masked (the special tokens never are); a last group of fewer examples
            # than parts leaves its last parts empty
            num_parts = num_batches * world
            maskable = lengths[order] - (self.corpus.num_before + self.corpus.num_after)
            bounds = token_balanced_bounds(maskable, min(num_parts, len(order)))
            bounds = np.concatenate([bounds, np.full(num_parts + 1 - len(bounds), len(order))])
            parts = [indices[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
            self._group = (
                key,
                [parts[b * world : (b + 1) * world] for b in rng.permutation(num_batches)],
            )
        return self._group[1][slot][worker]

    def batch(self, number: int) -> TensorDict:
        examples = [self.corpus[int(i)] for i in self.batch_indices(number)]
        if not examples:
            # The last global batch of a pass had fewer examples than workers: this worker still
            # takes its step (the others wait for it) on a row of special tokens only, which is
            # never masked, so it adds nothing to the loss or the metrics.
            examples = [np.asarray(self.reader.tokenizer.build_inputs_with_special_tokens([]))]
        input_ids, attention_mask = self.collate(examples)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def collate(self, examples: List[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        `(input_ids, attention_mask)`: `examples` padded with the pad token to a common length, a
        multiple of `pad_to_multiple_of`, and which positions hold an example's token (a text
        may hold the pad token's own string, `<pad>`, which the tokenizer gives the pad id).
        """
        longest = max(len(e) for e in examples)
        length = min(
            -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of,
            max(self.reader.max_length, longest),
        )
        batch = np.full((len(examples), length), self._pad_token_id, dtype=np.int64)
        for row, example in enumerate(examples):
            batch[row, : len(example)] = example
        lengths = torch.tensor([len(example) for example in examples])
        return torch.from_numpy(batch), torch.arange(length)[None] < lengths[:, None]

    # -- the DataLoader API -----------------------------------------------------------------

    def __len__(self) -> int:
        return (
            self.batches_per_epoch if self.batches_per_epoch is not None else self.batches_per_pass
        )

    def __iter__(self) -> Iterator[TensorDict]:
        num_batches = len(self)
        first = self._next_batch
        self._next_batch += num_batches
        dataset = _Batches(self, first, num_batches)
        if self.num_workers:
            self._place = self.place()
            batches: Iterator[TensorDict] = iter(
                torch.utils.data.DataLoader(
                    dataset,
                    batch_size=None,
                    num_workers=self.num_workers,
                    # its own generator: drawing worker seeds from the global one would change the
                    # dropout masks after a `--recover` replay
                    generator=torch.Generator().manual_seed(self.seed),
                    pin_memory=self.cuda_device is not None and self.cuda_device.type == "cuda",
                )
            )
        else:
            batches = iter(dataset)
        for batch in batches:
            yield (
                nn_util.move_to_device(batch, self.cuda_device)
                if self.cuda_device is not None
                else batch
            )

    def iter_instances(self) -> Iterator[Instance]:
        """One instance per example, in file order (used only to build a vocabulary, which masked-LM runs skip)."""
        yield from self.reader.read(self.data_path)

    def index_with(self, vocab: Vocabulary) -> None:
        """
        Nothing to index (batches hold token ids of the model's own tokenizer), but the trainer
        and `allennlp evaluate` call this before the first batch, so the data is read (and
        tokenized into the cache) here: a bad file, the validation data's too, stops the run
        before the first optimizer step.
        """
        logger.info("%s: %d batches per pass over the data", self.data_path, self.batches_per_pass)
        if self.hold_out == "exclude":  # the reader's share counted the held-out documents in
            logger.info(
                "%s: %d examples held out to measure the held-out loss; one pass trains on "
                "%.1f%% of its tokens",
                self.data_path,
                len(self.held_out_examples),
                100 * self.covered_share,
            )

    def set_target_device(self, device: torch.device) -> None:
        self.cuda_device = device
