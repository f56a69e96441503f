import math

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params
from allennlp.common.testing import ModelTestCase
from allennlp.data import Vocabulary
from allennlp.models import Model
from transformers import AutoModelForMaskedLM, AutoTokenizer

from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm
from tests.conftest import CONFIGS, DATA, mlm_env


class TestDaptMaskedLm(ModelTestCase):
    @pytest.fixture(autouse=True)
    def _environment(self, tiny_model, monkeypatch, tmp_path):
        # dapt.jsonnet reads its settings from the environment
        for key, value in mlm_env(
            tiny_model,
            NUM_STEPS="4",
            NUM_CHECKPOINTS="1",
            MAX_LENGTH="48",
            HELDOUT_PATH=str(DATA / "domain_heldout.txt"),
        ).items():
            monkeypatch.setenv(key, value)
        self.tiny_model = tiny_model
        self.set_up_model(CONFIGS / "dapt.jsonnet", DATA / "domain_heldout.txt")

    def test_model_can_train_save_and_load(self):
        # with a 48-token limit, position embeddings past it are never used
        self.ensure_model_can_train_save_and_load(
            self.param_file,
            gradients_to_ignore={"mlm.roberta.embeddings.position_embeddings.weight"},
        )

    def test_metrics_are_token_weighted_and_perplexity_is_exp_of_the_mean_loss(self):
        self.model.eval()
        ids = self.dataset.as_tensor_dict()["input_ids"]
        # two batches with very different numbers of masked tokens: a per-batch mean would differ
        batches = [ids, ids[:1, :12]]
        losses, counts, correct = [], [], 0
        encoder_inputs = []  # the masked ids the encoder saw
        hook = self.model.mlm.base_model.embeddings.register_forward_pre_hook(
            lambda module, args, kwargs: encoder_inputs.append(kwargs["input_ids"]),
            with_kwargs=True,
        )
        for batch in batches:
            output = self.model(input_ids=batch)
            masked_input_ids = encoder_inputs[-1]
            selected = output["labels"] != -100
            # recomputed with the full model, independently of the masked-positions-only head
            logits = self.model.mlm(
                input_ids=masked_input_ids,
                attention_mask=batch != self.model.tokenizer.pad_token_id,
            ).logits[selected]
            targets = output["labels"][selected]
            losses.append(torch.nn.functional.cross_entropy(logits, targets).item())
            counts.append(int(selected.sum()))
            correct += int((logits.argmax(-1) == targets).sum())
        hook.remove()
        assert counts[0] > 5 * counts[1] > 0
        metrics = self.model.get_metrics(reset=True)
        weighted = (losses[0] * counts[0] + losses[1] * counts[1]) / sum(counts)
        assert metrics["mlm_loss"] == pytest.approx(weighted, rel=1e-5)
        assert abs(weighted - sum(losses) / 2) > 1e-3, (
            "the batches must tell token- from batch-weighting apart"
        )
        assert metrics["perplexity"] == pytest.approx(math.exp(weighted), rel=1e-5)
        assert metrics["mlm_accuracy"] == correct / sum(counts)
        assert self.model.get_metrics() == {}  # reset

    def test_the_last_layer_runs_at_the_masked_positions_only(self):
        self.model.eval()
        ids = self.dataset.as_tensor_dict()["input_ids"]
        layers = self.model.mlm.base_model.encoder.layer
        seen = []
        for layer in (layers[0], layers[-1]):
            layer.intermediate.dense.register_forward_hook(
                lambda module, args, output: seen.append(args[0].shape[:-1].numel())
            )
        losses = []
        for at_read_positions in (True, False):  # False: the encoder's own forward
            self.model.last_layer_at_read_positions = at_read_positions
            with torch.no_grad():
                output = self.model(input_ids=ids)
            losses.append(float(output["loss"]))
        selected = int((output["labels"] != -100).sum())  # the same masks both times
        # the head's padding rows are position 0, computed once more unless it is selected
        assert seen[0] == seen[2] == seen[3] == ids.numel()
        assert selected <= seen[1] <= selected + 1 < ids.numel() / 4
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)

    def test_evaluation_masks_depend_only_on_each_example(self):
        self.model.eval()
        batch = self.dataset.as_tensor_dict()["input_ids"]
        pad = self.model.tokenizer.pad_token_id
        whole = self.model(input_ids=batch)["labels"]
        # each example alone, or in another order with more padding, gets the same masks
        for row in range(batch.shape[0]):
            alone = batch[row][batch[row] != pad][None]
            assert torch.equal(
                self.model(input_ids=alone)["labels"][0], whole[row][batch[row] != pad]
            )
        padded = torch.nn.functional.pad(batch.flip(0), (0, 7), value=pad)
        assert torch.equal(
            self.model(input_ids=padded)["labels"][:, : batch.shape[1]].flip(0), whole
        )

    def test_held_out_loss_is_the_same_for_any_batch_size(self):
        from allennlp.training.util import evaluate

        from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
        from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

        reader = MaskedLmCorpusReader(str(self.tiny_model), max_length=48)
        losses = [
            evaluate(
                self.model,
                MaskedLmBatches(
                    reader,
                    str(DATA / "domain_heldout.txt"),
                    batch_size=size,
                    shuffle=shuffle,
                    seed=5,
                ),
                cuda_device=-1,
            )["mlm_loss"]
            for size, shuffle in ((8, False), (16, False), (3, True))
        ]
        assert losses[1] == pytest.approx(losses[0], rel=1e-6) and losses[2] == pytest.approx(
            losses[0], rel=1e-6
        )

    def test_a_pad_token_written_in_a_text_is_attended_to_as_transformers_does(self, tmp_path):
        """The tokenizer gives `<pad>` in a text the pad id; it is a token, not padding."""
        from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
        from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

        texts = ["the cook <pad> painted the garden with a brush .", "a shorter line ."]
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("\n".join(texts) + "\n")
        reader = MaskedLmCorpusReader(str(self.tiny_model), max_length=48)
        batch = next(iter(MaskedLmBatches(reader, str(corpus), batch_size=2, shuffle=False)))
        tokenizer = AutoTokenizer.from_pretrained(str(self.tiny_model))
        width = batch["input_ids"].shape[1]  # a multiple of the loader's `pad_to_multiple_of`
        encoded = tokenizer(texts, padding="max_length", max_length=width, return_tensors="pt")
        assert torch.equal(batch["input_ids"], encoded["input_ids"])
        written = encoded["input_ids"][0][encoded["attention_mask"][0].bool()]
        assert (written == tokenizer.pad_token_id).sum() == 1
        assert torch.equal(batch["attention_mask"], encoded["attention_mask"].bool())
        self.model.eval()
        encoder_inputs = []  # the masked ids the encoder saw
        hook = self.model.mlm.base_model.embeddings.register_forward_pre_hook(
            lambda module, args, kwargs: encoder_inputs.append(kwargs["input_ids"]),
            with_kwargs=True,
        )
        with torch.no_grad():
            output = self.model(**batch)
            selected = output["labels"] != -100
            logits = self.model.mlm(
                input_ids=encoder_inputs[-1], attention_mask=encoded["attention_mask"]
            ).logits[selected]
        hook.remove()
        expected = torch.nn.functional.cross_entropy(logits, output["labels"][selected])
        assert float(output["loss"]) == pytest.approx(float(expected), rel=1e-5)

    def test_training_masks_change_every_batch_and_resume_with_the_checkpoint(self):
        self.model.train()
        batch = self.dataset.as_tensor_dict()
        checkpoint = {k: v.clone() for k, v in self.model.state_dict().items()}
        first = self.model(**batch)["labels"]
        second = self.model(**batch)["labels"]
        assert not torch.equal(first, second), "a batch seen again is masked anew"
        self.model.load_state_dict(
            checkpoint
        )  # as --recover does: the batch counter is in the checkpoint
        assert torch.equal(self.model(**batch)["labels"], first)
        assert torch.equal(self.model(**batch)["labels"], second)

    def test_the_head_sees_few_sizes_over_many_training_batches(self):
        # issue 14: a head tensor of a new size at every step fragmented the heap, and a TAPT
        # run's resident memory grew with every epoch; the head's rows are padded instead
        from dapt_plugin.nn.masked_lm_heads import HEAD_ROWS_MULTIPLE

        self.model.train()
        batch = self.dataset.as_tensor_dict()
        rows = []
        hook = self.model.mlm.lm_head.register_forward_pre_hook(
            lambda module, args: rows.append(args[0].shape[0])
        )
        masked = [int(self.model(**batch)["num_masked"]) for _ in range(30)]
        hook.remove()
        assert len(set(masked)) >= 5, "the number of masked tokens must vary for the test to tell"
        assert len(set(rows)) <= 2
        assert all(0 <= r - m < HEAD_ROWS_MULTIPLE for r, m in zip(rows, masked))

    def test_special_and_padding_tokens_are_never_masked_over_100k_tokens(self):
        self.model.train()
        rows = [self.dataset.as_tensor_dict()["input_ids"]] * 150
        width = max(r.shape[1] for r in rows)
        batch = torch.cat(
            [torch.nn.functional.pad(r, (0, width - r.shape[1]), value=1) for r in rows]
        )
        batch = torch.nn.functional.pad(
            batch, (0, 8), value=self.model.tokenizer.pad_token_id
        )  # padding on every row
        special = torch.isin(batch, torch.tensor(self.model.tokenizer.all_special_ids))
        labels = self.model(input_ids=batch)["labels"]
        selected = labels != -100
        assert (~special).sum() > 100_000
        assert not selected[special].any()
        assert abs(selected.sum().item() / (~special).sum().item() - 0.15) < 0.005

    def test_configuration_errors_name_the_key(self):
        vocab = Vocabulary.empty()
        with pytest.raises(
            ConfigurationError, match=r"`mlm_probability` must be in \(0, 1\); got 1.5"
        ):
            DaptMaskedLm(vocab, str(self.tiny_model), mlm_probability=1.5)
        with pytest.raises(ConfigurationError, match="`bf16` autocast needs a CUDA GPU"):
            DaptMaskedLm(vocab, str(self.tiny_model), bf16=True)(torch.tensor([[0, 5, 6, 2]]))


@pytest.mark.parametrize(
    "old, new",
    [
        ("mask_replace_probability", "mask_replace_prob"),
        ("random_replace_probability", "random_replace_prob"),
    ],
)
def test_old_masking_argument_names_are_refused_naming_hugging_face_s(tiny_model, old, new):
    params = Params({"type": "dapt_masked_lm", "model_name": str(tiny_model), old: 0.1})
    with pytest.raises(ConfigurationError) as error:
        Model.from_params(vocab=Vocabulary.empty(), params=params)
    assert error.value.message.startswith(
        f"`{old}` of the dapt_masked_lm model was renamed `{new}`, Hugging Face's name"
    )


def test_hugging_face_s_masking_names_are_read_and_checked(tiny_model):
    def model(**masking):
        params = Params({"type": "dapt_masked_lm", "model_name": str(tiny_model), **masking})
        return Model.from_params(vocab=Vocabulary.empty(), params=params)

    chosen = model(mask_replace_prob=0.5, random_replace_prob=0.4)
    assert (chosen.mask_replace_prob, chosen.random_replace_prob) == (0.5, 0.4)
    with pytest.raises(ConfigurationError) as error:
        model(mask_replace_prob=0.5, random_replace_prob=0.6)
    assert error.value.message == (
        "`mask_replace_prob` and `random_replace_prob` must be non-negative and sum to at most 1; "
        "got 0.5 and 0.6"
    )


def _with_added_token(tiny_model, output_dir, embedding_rows=None):
    """
    The tiny model with one token added to its tokenizer, and its embeddings resized to
    `embedding_rows` (None: left as they are, one row short); returns its directory.
    """
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_model))
    tokenizer.add_tokens(["zolvexmin_added"])
    if embedding_rows is not None:
        model.resize_token_embeddings(embedding_rows)
    tokenizer.save_pretrained(str(output_dir))
    model.save_pretrained(str(output_dir))
    return output_dir


def test_random_replacements_are_tokens_of_the_tokenizer_added_ones_included(tiny_model, tmp_path):
    num_tokens = len(AutoTokenizer.from_pretrained(str(tiny_model))) + 1
    # 100 embedding rows more than tokens (padding rows): a draw from the rows would pass them
    directory = _with_added_token(tiny_model, tmp_path / "added", num_tokens + 100)
    model = DaptMaskedLm(
        Vocabulary.empty(),
        str(directory),
        mlm_probability=0.9,
        mask_replace_prob=0.0,
        random_replace_prob=1.0,
    )
    assert len(model.tokenizer) == num_tokens
    model.train()
    special = torch.tensor(model.tokenizer.all_special_ids)
    content = torch.arange(num_tokens)[~torch.isin(torch.arange(num_tokens), special)]
    ids = content[
        torch.randint(len(content), (100, 250), generator=torch.Generator().manual_seed(0))
    ]
    encoder_inputs = []
    hook = model.mlm.base_model.embeddings.register_forward_pre_hook(
        lambda module, args, kwargs: encoder_inputs.append(kwargs["input_ids"]), with_kwargs=True
    )
    labels = model(input_ids=ids)["labels"]
    hook.remove()
    drawn = encoder_inputs[0][labels != -100]
    # ~22K draws from ~700 ids: the added (last) id ~30 times, none of the 100 padding rows
    # (each drawn with probability 1 - (700 / 800) ** 22_000 if the rows were drawn from)
    assert len(drawn) > 20_000
    assert int(drawn.max()) == num_tokens - 1 and int(drawn.min()) >= 0


def test_a_tokenizer_longer_than_the_embeddings_is_refused(tiny_model, tmp_path):
    rows = len(AutoTokenizer.from_pretrained(str(tiny_model)))
    directory = _with_added_token(tiny_model, tmp_path / "not_resized")
    with pytest.raises(ConfigurationError) as error:
        DaptMaskedLm(Vocabulary.empty(), str(directory))
    assert (
        f"has {rows + 1} tokens, but the model's input embeddings have {rows} rows"
        in error.value.message
    )


def test_the_attention_implementation_is_chosen_or_refused_naming_the_key(tiny_model):
    def attention(**options):
        params = Params({"type": "dapt_masked_lm", "model_name": str(tiny_model), **options})
        model = Model.from_params(vocab=Vocabulary.empty(), params=params)
        return type(model.mlm.roberta.encoder.layer[0].attention.self).__name__

    assert attention() == "RobertaSdpaSelfAttention"  # transformers' default
    assert attention(attn_implementation="eager") == "RobertaSelfAttention"
    assert attention(attn_implementation="eager", load_weights=False) == "RobertaSelfAttention"
    with pytest.raises(ConfigurationError) as error:
        attention(attn_implementation="fastest")
    assert error.value.message.startswith(
        f"`attn_implementation` 'fastest' cannot be used for {str(tiny_model)!r}: "
    )


def test_a_compiled_encoder_keeps_the_names_of_its_weights(tiny_model):
    def model(**options):
        params = Params({"type": "dapt_masked_lm", "model_name": str(tiny_model), **options})
        return Model.from_params(vocab=Vocabulary.empty(), params=params)

    compiled = model(torch_compile=True)
    assert compiled.mlm.base_model._compiled_call_impl is not None  # compiled when it first runs
    assert list(compiled.state_dict()) == list(model().state_dict())
