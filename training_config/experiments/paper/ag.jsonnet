// The paper's Table 5 for AGNews, domain News: the classifier fine-tuned from
// RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/ag.jsonnet -s runs/paper
// The task's files (`task: 'ag'`, 115000 training examples) are read from
// $DAPT_PLUGIN_DATA/ag/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in.
// For comparison, the paper's Table 5 row AGNews (test macro F1, mean of five seeds):
//   baseline 93.9, dapt 93.9, tapt 94.5, dapt_tapt 94.6
{
  base_model: 'roberta-base',
  domain_corpus: 'data/news/*.txt.gz',  // News text for DAPT
  task: 'ag',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'macro_f1',  // macro F1, as the paper reports every task but ChemProt and RCT
  preset: 'big',  // big (3 epochs): over 100k examples, one of the paper's largest tasks
}
