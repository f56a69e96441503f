// The paper's Table 5 for ChemProt, domain BioMed: the classifier fine-tuned from
// RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/chemprot.jsonnet -s runs/paper
// The task's files (`task: 'chemprot'`, 4169 training examples) are read from
// $DAPT_PLUGIN_DATA/chemprot/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in.
// For comparison, the paper's Table 5 row ChemProt (test micro F1, mean of five seeds):
//   baseline 81.9, dapt 84.2, tapt 82.6, dapt_tapt 84.4
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',  // BioMed text for DAPT
  task: 'chemprot',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'micro_f1',  // micro F1, as the paper reports ChemProt and RCT
  preset: 'small',  // small (10 epochs): the paper's choice for all but its largest tasks
}
