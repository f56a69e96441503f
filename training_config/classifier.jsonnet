// Fine-tunes a pretrained encoder as a text classifier: the paper's fine-tuning recipe
// (Gururangan et al., 2020, §3 and Appendix B): RoBERTa + CLS pooling + tanh feed-forward +
// dropout + linear, AdamW, 6% warm-up then linear decay, validation on macro F1. Every input
// file (train, dev, test) is read and checked before the first optimizer step.
//
// Environment variables (only MODEL_NAME, TRAIN_PATH and DEV_PATH are required):
//   MODEL_NAME      hub name (roberta-base) or a `save_pretrained` directory, e.g. the
//                   `exported_model` of a DAPT or TAPT run
//   TRAIN_PATH, DEV_PATH   jsonl files with "text" and "label"
//   TEST_PATH       jsonl; when set, the final model is evaluated on it
//   EFFECTIVE_BATCH (16: examples per optimizer step), BATCH_SIZE (per device and step; default
//   EFFECTIVE_BATCH shared out over the devices; gradient accumulation makes up the rest),
//   NUM_EPOCHS (10), PATIENCE (3), MAX_LENGTH (512), LR (2e-5), SEED (0),
//   TRAIN_SAMPLE (train on N labelled training examples drawn at random), USE_AMP (false),
//   TRUST_REMOTE_CODE (false: a model directory with its own code is refused),
//   LOG_EVERY (50: optimizer steps between two progress lines in the log; TensorBoard curves of
//   every step are in <serialization dir>/log),
//   FUSED_ADAMW (true) / APEX_FUSED_ADAM (false), CUDA_DEVICES / NUM_NODES / MASTER_ADDRESS /
//   MASTER_PORT (see lib/devices.libsonnet)
local batch = import 'lib/batch.libsonnet';
local devices = import 'lib/devices.libsonnet';
local env = import 'lib/env.libsonnet';
local optim = import 'lib/optim.libsonnet';
local trainer = import 'lib/trainer.libsonnet';

local model_name = env.required('MODEL_NAME', 'a model-hub name such as roberta-base, or the directory of an exported DAPT/TAPT model');
local train_path = env.required('TRAIN_PATH', 'the labelled training data, a jsonl file with "text" and "label"');
local dev_path = env.required('DEV_PATH', 'the labelled development data, a jsonl file with "text" and "label"');
local test_path = env.str('TEST_PATH', null);

local sizes = batch.sizes(16, null);  // paper, Table 14: batch 16
local batch_size = sizes.per_device;
local num_epochs = env.int('NUM_EPOCHS', 10, min=1);  // paper, Table 14
local patience = env.int('PATIENCE', 3, min=1);  // paper, Table 14
local max_length = env.int('MAX_LENGTH', 512, min=1);  // paper, Table 14
local learning_rate = env.float('LR', 2e-5);  // paper, Table 14
local weight_decay = 0.1;  // paper, Table 14
local dropout = 0.1;  // paper, Table 14
local seed = env.int('SEED', 0, min=0);
// Lets a model directory run its own Python code; only for sources you trust.
local trust = { trust_remote_code: env.bool('TRUST_REMOTE_CODE', false) };

local reader(sample) = {
  type: 'text_classification_json_with_sampling',
  tokenizer: { type: 'pretrained_transformer', model_name: model_name, tokenizer_kwargs: trust },
  token_indexers: { roberta: { type: 'pretrained_transformer', model_name: model_name, tokenizer_kwargs: trust } },
  max_sequence_length: max_length,
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
    // CLS pooling (the model's default), then dropout, a tanh layer as wide as the encoder,
    // dropout, linear: RoBERTa's classification head. The widths come from MODEL_NAME itself.
    feedforward: { num_layers: 1, activations: 'tanh', dropout: dropout },
    dropout: dropout,
    namespace: 'tags',
  },
  // a new order in every epoch, drawn from SEED alone, so `--recover` trains on the same batches
  data_loader: { batch_sampler: { type: 'seeded_shuffle', batch_size: batch_size, seed: seed } },
  // also the test data's loader; reads its data before training, so that a bad dev or test
  // file stops the run before the first step
  validation_data_loader: { type: 'eager_multiprocess', batch_size: batch_size, shuffle: false },
  trainer: {
    num_epochs: num_epochs,
    patience: patience,
    validation_metric: '+macro_f1',
    num_gradient_accumulation_steps: sizes.accumulation,
    optimizer: optim.adamw(learning_rate, weight_decay),
    learning_rate_scheduler: optim.linear_warmup_decay(),
    use_amp: env.bool('USE_AMP', false),
    cuda_device: devices.cuda_device,
    checkpointer: trainer.checkpointer(keep=1),
    callbacks: trainer.recovery_callbacks + [trainer.training_curves],
  },
} + devices.distributed(find_unused_parameters=true)  // RoBERTa's pooler is unused under CLS pooling
