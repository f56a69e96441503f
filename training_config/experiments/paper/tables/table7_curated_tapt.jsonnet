// The paper's Table 7 for RCT-500: TAPT on the 500 labelled examples' text against curated TAPT,
// TAPT on that text and a larger pool of unlabelled text of the same source (for RCT, the rest of
// its training set), with and without DAPT before it.
//   allennlp adapt training_config/experiments/paper/tables/table7_curated_tapt.jsonnet -s runs/table7
// `data/rct-20k/unlabelled.jsonl` is yours to provide ({"text": ...} lines); the sample of 500 is
// drawn once (`task.sample`) and is all the task text any phase reads.
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',
  task: { name: 'rct-20k', sample: 500, sample_seed: 0 },
  variants: [
    'baseline',
    'tapt',
    'dapt_tapt',
    { name: 'curated_tapt', tapt: { extra: ['data/rct-20k/unlabelled.jsonl'] } },
    { name: 'dapt_curated_tapt', dapt: {}, tapt: { extra: ['data/rct-20k/unlabelled.jsonl'] } },
  ],
  seeds: [0, 1, 2, 3, 4],
  preset: 'small',
}
