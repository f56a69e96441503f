// The paper's Table 5 recipe on RCT-500 (500 examples), domain BioMed: the classifier
// fine-tuned from RoBERTa-base, after DAPT, after TAPT and after DAPT+TAPT, five seeds each.
//   allennlp adapt training_config/experiments/paper/rct-sample.jsonnet -s runs/paper
// The task's files (`task: 'rct-sample'`, 500 training examples) are read from
// $DAPT_PLUGIN_DATA/rct-sample/ or downloaded once from the original's URL
// (docs/configuration.md, "The paper's tasks").
// The domain corpus is yours to provide (the paper's DAPT corpora are not distributed); its path
// is relative to the directory `allennlp adapt` runs in. RCT-500 is the low-resource
// setting of the paper's later tables; Table 5 reports the full RCT (rct-20k.jsonnet).
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',  // BioMed text for DAPT
  task: 'rct-sample',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0, 1, 2, 3, 4],  // the paper reports the mean over five seeds
  metric: 'micro_f1',  // micro F1, as the paper reports ChemProt and RCT
  preset: 'small',  // small (10 epochs): the paper's choice for all but its largest tasks
}
