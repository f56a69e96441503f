// The optimizer and learning-rate schedule shared by every config of the plugin (devices are in
// devices.libsonnet; checkpoints, recovery and progress in trainer.libsonnet).
local env = import 'env.libsonnet';

{
  // AdamW as in the paper (and RoBERTa): betas (0.9, 0.98), eps 1e-6; no weight decay on
  // biases and LayerNorm weights. PyTorch's fused kernel (CPU and CUDA; one pass over each
  // parameter instead of ~10 tensor operations: a quarter of a CPU masked-LM step, see
  // benchmarks/RESULTS.md) unless FUSED_ADAMW=false or APEX_FUSED_ADAM=true (NVIDIA apex's
  // FusedAdam; apex must be installed).
  local apex = env.bool('APEX_FUSED_ADAM', false),
  local fused = env.bool('FUSED_ADAMW', !apex),
  adamw(lr, weight_decay):: {
    type: if apex then (if fused then error 'set FUSED_ADAMW or APEX_FUSED_ADAM, not both' else 'apex_fused_adam') else 'adamw',
    lr: lr,
    betas: [0.9, 0.98],
    eps: 1e-6,
    weight_decay: weight_decay,
    [if fused then 'fused']: true,
    parameter_groups: [
      // one pattern for both spellings: AllenNLP warns of a pattern that matches no parameter
      [['bias', '(LayerNorm|layer_norm)\\.weight'], { weight_decay: 0.0 }],
    ],
  },

  // The original repository's fine-tuning optimizer (`bert_adam`, pytorch-pretrained-bert's
  // BertAdam, the paper's): Adam without bias correction, each parameter tensor's gradient
  // clipped to norm 1 on its own, weight decay added to the update; its schedule is the
  // trainer's learning_rate_scheduler. Betas, eps and the groups as `adamw` above.
  bert_adam(lr, weight_decay):: {
    type: 'bert_adam',
    lr: lr,
    betas: [0.9, 0.98],
    eps: 1e-6,
    weight_decay: weight_decay,
    max_grad_norm: 1.0,
    parameter_groups: $.adamw(lr, weight_decay).parameter_groups,
  },

  // Linear warm-up over the first 6% of optimizer steps, then linear decay to 0 (paper, §3.1).
  linear_warmup_decay(warmup_ratio=0.06):: {
    type: 'linear_with_warmup_ratio',
    warmup_ratio: warmup_ratio,
  },
}
