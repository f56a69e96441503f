// Task-adaptive pretraining (TAPT): continues masked-LM training of MODEL_NAME (a base model,
// or the export of a DAPT run for DAPT+TAPT) on the task's own unlabelled text, with the
// paper's recipe (Gururangan et al., 2020, §4 and Table 13): lr 1e-4, effective batch 256,
// 100 epochs, AdamW (0.9, 0.98, eps 1e-6), weight decay 0.01, 6% warm-up then linear decay,
// no gradient clipping (the original's pretraining code has none), 15% masking. The task's
// train.jsonl is read as it is (its "text" field; labels are ignored).
// The adapted encoder is exported to <serialization dir>/exported_model.
//
// Environment variables (only MODEL_NAME and TAPT_PATH are required):
//   MODEL_NAME        hub name or a `save_pretrained` directory (e.g. runs/dapt/exported_model)
//   TAPT_PATH         the task's text: jsonl with "text" (e.g. train.jsonl) or .txt, .gz,
//                     a glob or a comma-separated list
//   EXTRA_TAPT_PATHS  more unlabelled text, comma-separated (curated TAPT, or the output of
//                     `allennlp select-tapt-data` for kNN-TAPT / RAND-TAPT)
//   HELDOUT_PATH      held-out text, validated on every epoch (optional; without it, 1% of the
//                     text, at most 2,000 lines, is held out to measure the loss)
//   NUM_EPOCHS (100: passes over the text, a checkpoint after each), EFFECTIVE_BATCH (256),
//   BATCH_SIZE (16), LR (1e-4), MAX_LENGTH (512), NUM_STEPS (unset; when set, the run is
//   NUM_STEPS optimizer steps instead of NUM_EPOCHS passes, with NUM_CHECKPOINTS (100)
//   checkpoints along them), and every other variable of dapt.jsonnet
//   (MLM_MODE, GROUP_BY_LENGTH, MLM_PROBABILITY, WHOLE_WORD_MASKING, SEED, TRUST_REMOTE_CODE, devices,
//   optimizer kernels, checkpoints and exports, LOG_EVERY, HEAD_WARMUP_STEPS)
local env = import 'lib/env.libsonnet';
local mlm = import 'lib/mlm.libsonnet';

local recipe = {
  lr: 1e-4,  // paper, Table 13
  effective_batch: 256,  // paper, Table 13
  num_steps: null,  // TAPT counts passes over the task text
  num_epochs: 100,  // paper, Table 13
  num_checkpoints: 100,  // along a run given in NUM_STEPS, as many as the recipe's passes
  weight_decay: 0.01,  // paper, Table 13
  max_length: 512,  // paper, Table 13
  batch_size: 16,
  mode: 'line_by_line',
};

local tapt_path = env.required('TAPT_PATH', "the task's unlabelled text, e.g. its train.jsonl");

mlm.config(
  recipe,
  std.join(',', [tapt_path] + env.list('EXTRA_TAPT_PATHS', [])),
  env.str('HELDOUT_PATH', null),
  num_epochs=env.int('NUM_EPOCHS', null, min=1),  // null: the recipe's
)
