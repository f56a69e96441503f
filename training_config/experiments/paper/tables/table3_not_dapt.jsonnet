// The paper's Table 3 for ChemProt: DAPT on the task's domain (BioMed) against DAPT on an
// irrelevant domain (¬DAPT; here News), five seeds each.
//   allennlp adapt training_config/experiments/paper/tables/table3_not_dapt.jsonnet -s runs/table3
// The corpora are yours to provide (the paper's are not distributed); paths are relative to the
// directory `allennlp adapt` runs in. The task's files: see docs/configuration.md, "The paper's tasks".
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',
  task: 'chemprot',
  variants: [
    'baseline',
    'dapt',
    { name: 'not_dapt', dapt: { corpus: 'data/news/*.txt.gz' } },
  ],
  seeds: [0, 1, 2, 3, 4],
  preset: 'small',
}
