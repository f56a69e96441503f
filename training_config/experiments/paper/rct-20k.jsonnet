// The paper's Table 5 for RCT (180k examples), domain BioMed: the classifier fine-tuned from
// RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/rct-20k.jsonnet -s runs/paper
// The task's files (`task: 'rct-20k'`, 180040 training examples) are read from
// $DAPT_PLUGIN_DATA/rct-20k/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in.
// For comparison, the paper's Table 5 row RCT (test micro F1, mean of five seeds):
//   baseline 87.2, dapt 87.6, tapt 87.7, dapt_tapt 87.8
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',  // BioMed text for DAPT
  task: 'rct-20k',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'micro_f1',  // micro F1, as the paper reports ChemProt and RCT
  preset: 'big',  // big (3 epochs): over 100k examples, one of the paper's largest tasks
}
