// Fine-tunes a pretrained encoder as a text classifier: the paper's fine-tuning recipe
// (Gururangan et al., 2020, §3 and Appendix B): RoBERTa + CLS pooling + dropout + tanh
// feed-forward + linear, BertAdam, validation on macro F1. Every input file (train, dev, test) is read
// and checked before the first optimizer step.
//
// PRESET picks one of the three fine-tuning presets of the paper's code (allenai/
// dont-stop-pretraining, environments/hyperparameters.py: ROBERTA_CLASSIFIER_SMALL, _MINI and
// _BIG, which its scripts/train.py `-e` passed to its training_config/classifier.jsonnet):
//   small (the default, as in the original's examples): 10 epochs, patience 3, batch 16, a
//          constant learning rate (the original's LR_SCHEDULE 0: no warm-up, no decay)
//   mini:  as small, with batch 8 (GRAD_ACC_BATCH_SIZE 8 and BATCH_SIZE 8 there)
//   big:   3 epochs, patience 3, batch 16, warm-up over the first 6% of the optimizer steps
//          then linear decay to 0 (LR_SCHEDULE 1); the paper's choice for its largest tasks
// All three, as the original sets them: lr 2e-5, dropout 0.1, its optimizer `bert_adam`
// (pytorch-pretrained-bert's BertAdam: Adam without bias correction, betas (0.9, 0.98), eps 1e-6,
// each parameter tensor's gradient clipped to norm 1 on its own (its `max_grad_norm`, under
// `trainer.optimizer`; `trainer.grad_norm` would clip their global norm too), weight decay 0.1
// added to the update, none on biases and LayerNorm weights), 512 tokens, SEED seeding Python,
// NumPy and
// PyTorch, the model of the best validation epoch kept. OPTIMIZER=adamw uses PyTorch's AdamW
// instead (bias-corrected, decoupled weight decay, no clipping; its fused kernel unless
// FUSED_ADAMW=false), as Hugging Face's Trainer does. As the original's `bucket` iterator,
// training batches hold texts of about the same length (`seeded_bucket`), so that little of what
// the model computes is padding; here each epoch's batches come from SEED alone.
//
// Environment variables (only MODEL_NAME, TRAIN_PATH and DEV_PATH, or TASK, are required):
//   MODEL_NAME      hub name (roberta-base) or a `save_pretrained` directory, e.g. the
//                   `exported_model` of a DAPT or TAPT run
//   TRAIN_PATH, DEV_PATH   jsonl files with "text" and "label"
//   TEST_PATH       jsonl; when set, the final model is evaluated on it
//   TASK            instead of the three: one of the paper's tasks by name (chemprot, rct-20k,
//                   rct-sample, citation_intent, sciie, ag, hyperpartisan_news, imdb, amazon),
//                   whose files are read from $DAPT_PLUGIN_DATA/<task>/ or downloaded once
//   PRESET (small, mini or big; see above); each variable below that a preset sets overrides it:
//   EFFECTIVE_BATCH (the preset's: examples per optimizer step), BATCH_SIZE (per device and
//   step; default EFFECTIVE_BATCH shared out over the devices; gradient accumulation makes up
//   the rest), NUM_EPOCHS (the preset's), PATIENCE (3), LR_SCHEDULE (the preset's: true for a
//   6% warm-up then linear decay, false for a constant learning rate; 1 and 0 as in the
//   original), MAX_LENGTH (512), LR (2e-5), SEED (0),
//   CLASSIFIER_HEAD (roberta, the paper's: dropout on the first token's vector, a new tanh
//   layer, linear, as the original's config; or bert, as BertForSequenceClassification: the
//   first token's vector through the encoder's own pooler, a tanh layer trained in BERT's
//   pre-training (a DAPT/TAPT export keeps MODEL_NAME's unchanged), then dropout and linear; for
//   BERT-style encoders, whose pooler it needs),
//   TRAIN_SAMPLE (train on N labelled training examples drawn at random), USE_AMP (false),
//   TRUST_REMOTE_CODE (false: a model directory with its own code is refused),
//   LOG_EVERY (50: optimizer steps between two progress lines in the log; TensorBoard curves of
//   every step are in <serialization dir>/log),
//   OPTIMIZER (bert_adam, the presets'; or adamw), with adamw: FUSED_ADAMW (true) /
//   APEX_FUSED_ADAM (false), CUDA_DEVICES / NUM_NODES / MASTER_ADDRESS /
//   MASTER_PORT (see lib/devices.libsonnet)
local batch = import 'lib/batch.libsonnet';
local devices = import 'lib/devices.libsonnet';
local env = import 'lib/env.libsonnet';
local optim = import 'lib/optim.libsonnet';
local trainer = import 'lib/trainer.libsonnet';

local model_name = env.required('MODEL_NAME', 'a model-hub name such as roberta-base, or the directory of an exported DAPT/TAPT model');
local train_path = env.required('TRAIN_PATH', 'the labelled training data, a jsonl file with "text" and "label" (or TASK, one of the paper\'s tasks by name)');
local dev_path = env.required('DEV_PATH', 'the labelled development data, a jsonl file with "text" and "label" (or TASK, one of the paper\'s tasks by name)');
local test_path = env.str('TEST_PATH', null);

// the original's environments/hyperparameters.py (ROBERTA_CLASSIFIER_<PRESET>)
local presets = {
  small: { num_epochs: 10, patience: 3, effective_batch: 16, lr_schedule: false },
  mini: { num_epochs: 10, patience: 3, effective_batch: 8, lr_schedule: false },
  big: { num_epochs: 3, patience: 3, effective_batch: 16, lr_schedule: true },
};
local preset_name = env.str('PRESET', 'small');
local preset = (
  if std.objectHas(presets, preset_name) then presets[preset_name]
  else error 'environment variable PRESET must be one of small, mini or big (the original repository\'s ROBERTA_CLASSIFIER_SMALL, _MINI and _BIG); got %s' % env.shown(preset_name)
);

local sizes = batch.sizes(preset.effective_batch, null);
local batch_size = sizes.per_device;
local num_epochs = env.int('NUM_EPOCHS', preset.num_epochs, min=1);
local patience = env.int('PATIENCE', preset.patience, min=1);
// the original's LR_SCHEDULE: BertAdam's `warmup_linear` over all steps with warm-up 0.06, or,
// with `t_total` -1, a constant learning rate
local lr_schedule = env.bool('LR_SCHEDULE', preset.lr_schedule);
local max_length = env.int('MAX_LENGTH', 512, min=1);  // paper, Table 14
local learning_rate = env.float('LR', 2e-5, above=0);  // paper, Table 14
local weight_decay = 0.1;  // paper, Table 14
local dropout = 0.1;  // paper, Table 14
local head = (
  local name = env.str('CLASSIFIER_HEAD', 'roberta');
  // dropout on the first token's vector, then on the tanh layer's output; the tanh layer from
  // the encoder's pooler
  if name == 'roberta' then { dropout: dropout, feedforward_dropout: 0, feedforward_from_pooler: false }
  else if name == 'bert' then { dropout: null, feedforward_dropout: dropout, feedforward_from_pooler: true }
  else error 'environment variable CLASSIFIER_HEAD must be roberta (the paper\'s head, RoBERTa\'s) or bert (the encoder\'s own pooler, as BertForSequenceClassification); got %s' % env.shown(name)
);
// numpy, and so AllenNLP's seeding, takes seeds below 2**32
local seed = env.int('SEED', 0, min=0, max=4294967295);
local optimizer = (
  local name = env.str('OPTIMIZER', 'bert_adam');
  if name == 'bert_adam' then optim.bert_adam(learning_rate, weight_decay)
  else if name == 'adamw' then optim.adamw(learning_rate, weight_decay)
  else error 'environment variable OPTIMIZER must be bert_adam (the original\'s, the presets\') or adamw; got %s' % env.shown(name)
);
// Lets a model directory run its own Python code; only for sources you trust.
local trust = { trust_remote_code: env.bool('TRUST_REMOTE_CODE', false) };

local reader(sample) = {
  type: 'text_classification_json_with_sampling',
  tokenizer: { type: 'pretrained_transformer', model_name: model_name, tokenizer_kwargs: trust },
  token_indexers: { roberta: { type: 'pretrained_transformer', model_name: model_name, tokenizer_kwargs: trust } },
  max_sequence_length: max_length,
  // every line must have a label; `allennlp predict` reads unlabelled text through the predictor
  // (not with --use-dataset-reader, which reads files through this reader)
  labelled: true,
  sample: sample,
  // Pinned to SEED: a distributed run builds its vocabulary in a process AllenNLP does not seed,
  // which would otherwise draw a different subset than the workers train on.
  [if sample != null then 'sample_seed']: seed,
};

{
  random_seed: seed,
  numpy_seed: seed,
  pytorch_seed: seed,
  dataset_reader: reader(env.int('TRAIN_SAMPLE', null, min=1)),
  validation_dataset_reader: reader(null),
  train_data_path: train_path,
  validation_data_path: dev_path,
  [if test_path != null then 'test_data_path']: test_path,
  evaluate_on_test: test_path != null,
  // labels come from the training data only: a dev or test label never seen in training is an error
  datasets_for_vocab_creation: ['train'],
  model: {
    type: 'basic_classifier_with_f1',
    text_field_embedder: {
      token_embedders: {
        roberta: { type: 'pretrained_transformer', model_name: model_name, tokenizer_kwargs: trust, transformer_kwargs: trust },
      },
    },
    // CLS pooling (the model's default), then (CLASSIFIER_HEAD=roberta) dropout, a tanh layer as
    // wide as the encoder, linear: the original's head (its feed-forward has no dropout of its
    // own; RobertaForSequenceClassification adds one after the tanh layer). The widths come
    // from MODEL_NAME itself.
    feedforward: { num_layers: 1, activations: 'tanh', dropout: head.feedforward_dropout },
    dropout: head.dropout,
    feedforward_from_pooler: head.feedforward_from_pooler,
    namespace: 'tags',
  },
  // batches of texts of about the same length (lengths sorted with 10% noise, as the original's
  // `bucket` iterator), in a new order in every epoch drawn from SEED alone, so `--recover` trains
  // on the same batches
  data_loader: { batch_sampler: { type: 'seeded_bucket', batch_size: batch_size, seed: seed } },
  // also the test data's loader; reads its data before training, so that a bad dev or test
  // file stops the run before the first step; batches cut from the texts sorted by length, so
  // that evaluation computes almost no padding (`allennlp evaluate --predictions-output-file`
  // writes its batches in that order; `allennlp predict` keeps the file's)
  validation_data_loader: { type: 'eager_multiprocess', batch_size: batch_size, sort_by_length: true },
  trainer: {
    num_epochs: num_epochs,
    patience: patience,
    validation_metric: '+macro_f1',
    num_gradient_accumulation_steps: sizes.accumulation,
    optimizer: optimizer,
    [if lr_schedule then 'learning_rate_scheduler']: optim.linear_warmup_decay(0.06),
    use_amp: env.bool('USE_AMP', false),
    cuda_device: devices.cuda_device,
    checkpointer: trainer.checkpointer(keep=1),
    callbacks: trainer.recovery_callbacks + [trainer.training_curves],
  },
} + devices.distributed(find_unused_parameters=true)  // RoBERTa's pooler is unused under CLS pooling
