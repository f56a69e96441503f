// The paper's Table 6 for ChemProt: TAPT on the task's own text against Transfer-TAPT, TAPT on the
// text of another task of the same domain (here RCT) before fine-tuning on ChemProt.
//   allennlp adapt training_config/experiments/paper/tables/table6_transfer_tapt.jsonnet -s runs/table6
// `data/rct-20k/train.jsonl` is RCT's training file (docs/configuration.md, "The paper's tasks":
// the mirror's `rct-20k/train.jsonl`); its labels are not read.
{
  base_model: 'roberta-base',
  task: 'chemprot',
  variants: [
    'tapt',
    { name: 'transfer_tapt', tapt: { text: 'data/rct-20k/train.jsonl' } },
  ],
  seeds: [0, 1, 2, 3, 4],
  preset: 'small',
}
