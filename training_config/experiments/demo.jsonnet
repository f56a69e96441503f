// The experiment of `make demo` (`python -m dapt_plugin.demo`): the paper's Table 5 on made-up
// pharmacology (dapt_plugin/demo/data.py, `generate_demo`) with a tiny RoBERTa, on CPU
// in a few minutes. The demo first writes, under DEMO_DIR, the data (`data/`) and the base model
// (`base_model/exported_model`: a tiny RoBERTa pretrained briefly on `data/general.txt` with
// dapt.jsonnet), then runs
//   DEMO_DIR=demo_runs allennlp adapt training_config/experiments/demo.jsonnet -s demo_runs/experiment
//
// Environment variables: DEMO_DIR (demo_runs).
//
// The sizes are the paper's recipes scaled down to a 2-layer, 64-wide model and one-sentence
// examples; each was tuned on a 2-core machine so that DAPT and TAPT reliably teach the model
// which compounds behave alike within the time of the demo.
local env = import '../lib/env.libsonnet';

local dir = env.str('DEMO_DIR', 'demo_runs');
local data = dir + '/data';

{
  base_model: dir + '/base_model/exported_model',
  domain_corpus: data + '/domain.txt',
  task: {
    train: data + '/task/train.jsonl',
    dev: data + '/task/dev.jsonl',
    test: data + '/task/test.jsonl',
  },
  // task-style sentences that pair compounds with a class word: the paper's curated TAPT data
  tapt_extra: [data + '/task/unlabeled.jsonl'],
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2],
  metric: 'macro_f1',
  settings: {
    all: {
      MAX_LENGTH: 32,  // the longest example is 14 tokens
      DAPT_PLUGIN_CACHE: dir + '/cache',  // keep the demo's token cache with its outputs
    },
    // 1.5K steps of 64 sentences, 5 checkpoints along the way; 2e-3 suits a 64-wide model
    dapt: { NUM_STEPS: 1500, NUM_CHECKPOINTS: 5, EFFECTIVE_BATCH: 64, BATCH_SIZE: 64, LR: 2e-3 },
    // 56 passes over train + unlabeled text (1,700 lines, 27 batches): ~1.5K steps, as DAPT
    tapt: { NUM_EPOCHS: 56, EFFECTIVE_BATCH: 64, BATCH_SIZE: 64, LR: 2e-3 },
    // 12 epochs over 200 examples without early stopping: every variant, the baseline too, fits
    // its training set (by epoch 6 at 1e-3; at the paper's 2e-5 a 64-wide model barely moves).
    // The demo was tuned with a 6% warm-up then linear decay (LR_SCHEDULE, the `big` preset's
    // schedule), which it keeps: a constant 1e-3 (the default `small` preset's schedule) would
    // change its results.
    classifier: { NUM_EPOCHS: 12, PATIENCE: 12, BATCH_SIZE: 16, LR: 1e-3, LR_SCHEDULE: true },
  },
}
