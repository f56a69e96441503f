// Domain-adaptive pretraining (DAPT): continues masked-LM training of MODEL_NAME on a domain
// corpus with the paper's recipe (Gururangan et al., 2020, §3 and Table 13): lr 5e-4, effective
// batch 2048 sequences, 12.5K optimizer steps, AdamW (0.9, 0.98, eps 1e-6), weight decay 0.01,
// 6% warm-up then linear decay, no gradient clipping (the original's pretraining code has none),
// 15% masking, sequences of up to 512 tokens.
// The adapted encoder is exported to <serialization dir>/exported_model.
//
// Environment variables (only MODEL_NAME and CORPUS_PATH are required):
//   MODEL_NAME        hub name (roberta-base) or a `save_pretrained` directory
//   CORPUS_PATH       domain text: .txt (one document per line) or .jsonl ("text"), .gz of
//                     either; a glob or a comma-separated list
//   HELDOUT_PATH      held-out domain text, validated on every epoch (optional; without it, 1% of
//                     the corpus, at most 2,000 documents, is held out to measure the loss)
//   NUM_STEPS (12500) optimizer steps; NUM_CHECKPOINTS (10) checkpoints (and validations) along
//   them, evenly spaced (NUM_STEPS must be a multiple of it)
//   EFFECTIVE_BATCH (2048), BATCH_SIZE (16, per device and step; gradient accumulation makes up
//   the rest), LR (5e-4), MAX_LENGTH (512),
//   MLM_MODE (document_windows: every document in consecutive windows of MAX_LENGTH tokens, all
//   of its text once per pass | packed: documents concatenated and cut into full blocks |
//   line_by_line: each document's first MAX_LENGTH tokens only; each run logs, and metrics.json
//   records as corpus_tokens_trained_share, the share of the corpus's tokens a pass trains on),
//   GROUP_BY_LENGTH (false; with line_by_line or document_windows: each 50 batches' worth of
//   examples sorted by length, with 10% noise, and cut into batches of equal numbers of tokens,
//   BATCH_SIZE examples on average, so that little is padding; the loader's `group_by_length`),
//   MLM_PROBABILITY (0.15), WHOLE_WORD_MASKING, SEED, NUM_WORKERS, DAPT_PLUGIN_CACHE,
//   TRUST_REMOTE_CODE (false), FUSED_ADAMW (true) / APEX_FUSED_ADAM (false),
//   BF16 / USE_AMP / GRADIENT_CHECKPOINTING (GPU), CUDA_DEVICES (0: one GPU, 0,1: data-parallel,
//   -1: the CPU; unset: the first GPU if there is one), NUM_NODES / MASTER_ADDRESS / MASTER_PORT
//   (several machines, see lib/devices.libsonnet),
//   CHECKPOINT_EVERY_BATCHES (in optimizer steps, as AllenNLP counts its batches) /
//   CHECKPOINT_EVERY_SECONDS, EXPORT_EVERY_STEPS,
//   LOG_EVERY (50: optimizer steps between two progress lines in the log; TensorBoard curves of
//   every step are in <serialization dir>/log),
//   HEAD_WARMUP_STEPS (when MODEL_NAME's checkpoint has no trained masked-LM head, steps that train
//   the head alone first; default: three passes over the data, at most 1,000; 0 to skip)
local env = import 'lib/env.libsonnet';
local mlm = import 'lib/mlm.libsonnet';

local recipe = {
  lr: 5e-4,  // paper, Table 13
  effective_batch: 2048,  // paper, Table 13
  num_steps: 12500,  // paper, Table 13
  num_checkpoints: 10,  // along the 12.5K steps (not a recipe value)
  weight_decay: 0.01,  // paper, Table 13
  max_length: 512,  // paper, Table 13
  batch_size: 16,  // per device and step; fits roberta-base at 512 tokens in ~24 GB
  // all of every document once per pass, no example spanning two documents: a BioMed paper
  // averages ~2.8K tokens (paper, Table 1: 7.55B tokens, 2.68M papers), of which line_by_line
  // would train on the first 512 only
  mode: 'document_windows',
};

mlm.config(
  recipe,
  env.required('CORPUS_PATH', 'the domain corpus: text files (one document per line) or jsonl with "text", optionally .gz, a glob or a comma-separated list'),
  env.str('HELDOUT_PATH', null),
)
