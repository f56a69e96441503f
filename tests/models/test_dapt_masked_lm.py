import math

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.testing import ModelTestCase
from allennlp.data import Vocabulary

from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm
from tests.conftest import CONFIGS, DATA, mlm_env


class TestDaptMaskedLm(ModelTestCase):
    @pytest.fixture(autouse=True)
    def _environment(self, tiny_model, monkeypatch, tmp_path):
        # dapt.jsonnet reads its settings from the environment
        for key, value in mlm_env(
            tiny_model,
            NUM_STEPS="4",
            NUM_EPOCHS="1",
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
        hook = self.model.mlm.base_model.register_forward_pre_hook(
            lambda module, args, kwargs: encoder_inputs.append(
                kwargs.get("input_ids", args[0] if args else None)
            ),
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
