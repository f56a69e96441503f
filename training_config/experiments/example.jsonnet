// An experiment file of `allennlp adapt`: the paper's Table 5 for one domain and task.
//   allennlp adapt training_config/experiments/example.jsonnet -s runs/experiment
// Paths are relative to the directory `allennlp adapt` runs in; std.extVar reads the environment.
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',  // DAPT corpus; kNN/RAND-TAPT select from it
  task: {
    train: 'data/chemprot/train.jsonl',
    dev: 'data/chemprot/dev.jsonl',
    test: 'data/chemprot/test.jsonl',
    // sample: 500, sample_seed: 0,  // low-resource: 500 examples, drawn once, for every phase
  },
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],  // also: knn_tapt, rand_tapt
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'micro_f1',  // ChemProt and RCT; macro_f1 for the other tasks
  // the original's fine-tuning presets: small (10 epochs, constant learning rate; the default),
  // mini (small with batch 8) or big (3 epochs, warm-up and decay; the paper's largest tasks)
  preset: 'small',
  tapt_extra: [],  // curated TAPT: more unlabelled task text
  knn_k: 50,
  // held-out text of each domain: every encoder's masked-LM loss on each (mlm_loss.md), e.g.
  // heldout: { biomed: 'data/biomed/heldout.txt', task: 'data/chemprot/dev.jsonl' },
  // Environment variables of the training configs, by phase kind (all, dapt, tapt, classifier).
  settings: {
    all: { CUDA_DEVICES: '0' },  // one GPU; '0,1' data-parallel on two
  },
}
