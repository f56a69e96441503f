// The paper's held-out masked-LM loss across domains for ChemProt's encoders: the base model and
// the encoders after DAPT, TAPT and DAPT+TAPT, each on held-out text of each of the four domains
// and of the task, into mlm_loss.md, mlm_loss.json and mlm_loss.png (a heatmap).
//   allennlp adapt training_config/experiments/paper/tables/heldout_mlm_loss.jsonnet -s runs/heldout
// The held-out texts are yours to provide: documents of each domain never used for DAPT.
{
  base_model: 'roberta-base',
  domain_corpus: 'data/biomed/*.txt.gz',
  task: 'chemprot',
  variants: ['baseline', 'dapt', 'tapt', 'dapt_tapt'],
  seeds: [0],
  heldout: {
    biomed: 'data/heldout/biomed.txt',
    cs: 'data/heldout/cs.txt',
    news: 'data/heldout/news.txt',
    reviews: 'data/heldout/reviews.txt',
  },
  preset: 'small',
}
