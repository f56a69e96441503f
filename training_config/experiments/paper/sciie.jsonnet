// The paper's Table 5 for SciERC, domain CS: the classifier fine-tuned from
// RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/sciie.jsonnet -s runs/paper
// The task's files (`task: 'sciie'`, 3219 training examples) are read from
// $DAPT_PLUGIN_DATA/sciie/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in.
// For comparison, the paper's Table 5 row SciERC (test macro F1, mean of five seeds):
//   baseline 77.3, dapt 80.8, tapt 79.3, dapt_tapt 81.3
{
  base_model: 'roberta-base',
  domain_corpus: 'data/cs/*.txt.gz',  // CS text for DAPT
  task: 'sciie',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'macro_f1',  // macro F1, as the paper reports every task but ChemProt and RCT
  preset: 'small',  // small (10 epochs): the paper's choice for all but its largest tasks
}
