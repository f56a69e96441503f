// The paper's Table 8 for ChemProt: TAPT on the task's text and on the task's text with domain
// text selected by its nearest neighbours (kNN-TAPT, k = 50, 150 and 500) or at random (RAND-TAPT,
// as many sentences as the k = 50 selection).
//   allennlp adapt training_config/experiments/paper/tables/table8_knn_tapt.jsonnet -s runs/table8
// The domain corpus is yours to provide; `allennlp select-tapt-data` (docs/selection.md) selects.
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',
  task: 'chemprot',
  knn_k: 50,
  variants: [
    'tapt',
    'rand_tapt',
    'knn_tapt',
    { name: 'knn_tapt_150', select: { method: 'knn', k: 150 } },
    { name: 'knn_tapt_500', select: { method: 'knn', k: 500 } },
  ],
  seeds: [0, 1, 2, 3, 4],
  preset: 'small',
}
