// The paper's Table 5 for Helpfulness (Amazon reviews), domain Reviews: the classifier
// fine-tuned from RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/amazon.jsonnet -s runs/paper
// The task's files (`task: 'amazon'`, 115251 training examples) are read from
// $DAPT_PLUGIN_DATA/amazon/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in.
// For comparison, the paper's Table 5 row Helpfulness (test macro F1, mean of five seeds):
//   baseline 65.1, dapt 66.5, tapt 68.5, dapt_tapt 68.7
{
  base_model: 'roberta-base',
  domain_corpus: 'data/reviews/*.txt.gz',  // Reviews text for DAPT
  task: 'amazon',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'macro_f1',  // macro F1, as the paper reports every task but ChemProt and RCT
  preset: 'big',  // big (3 epochs): over 100k examples, one of the paper's largest tasks
}
