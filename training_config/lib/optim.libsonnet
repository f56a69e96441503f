// Optimizer, schedule and device settings shared by every config of the plugin.
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

  // Linear warm-up over the first 6% of optimizer steps, then linear decay to 0 (paper, §3.1).
  linear_warmup_decay(warmup_ratio=0.06):: {
    type: 'linear_with_warmup_ratio',
    warmup_ratio: warmup_ratio,
  },

  // Devices. CUDA_DEVICES="0,1,2,3" (or "-1,-1" for two CPU workers) trains data-parallel with
  // AllenNLP's `distributed` settings; otherwise CUDA_DEVICE picks one device (-1 = CPU; unset
  // = the first GPU if there is one). Several machines: NUM_NODES, MASTER_ADDRESS (or
  // MASTER_ADDR), MASTER_PORT (the same on every node) and `allennlp train ... --node-rank K` on
  // node K.
  local isDevice(d) = (
    local digits = if std.startsWith(d, '-') then d[1:] else d;
    digits != '' && std.all([std.member('0123456789', c) for c in std.stringChars(digits)])
  ),
  cuda_devices:: [
    if isDevice(d) then std.parseInt(d)
    else error 'environment variable CUDA_DEVICES must be comma-separated device numbers, such as 0,1 (or -1,-1 for CPU workers); got %s' % std.join(',', env.list('CUDA_DEVICES', []))
    for d in env.list('CUDA_DEVICES', [])
  ],
  num_nodes:: env.int('NUM_NODES', 1, min=1),
  primary_address:: env.str('MASTER_ADDRESS', env.str('MASTER_ADDR', null)),
  // workers taking part in each optimizer step
  world_size:: std.max(1, std.length(self.cuda_devices)) * self.num_nodes,
  distributed(find_unused_parameters):: (
    if self.world_size > 1 then {
      distributed: {
        cuda_devices: $.cuda_devices,
        num_nodes: $.num_nodes,
        // allennlp 2.10 reads `primary_address`/`primary_port` (any other key is ignored, and the
        // run waits for a primary at 127.0.0.1); MASTER_ADDR is what torchrun and SLURM scripts set
        [if $.primary_address != null then 'primary_address']: $.primary_address,
        [if env.int('MASTER_PORT', null, min=1) != null then 'primary_port']: env.int('MASTER_PORT', null, min=1),
        ddp_accelerator: { type: 'torch', find_unused_parameters: find_unused_parameters },
      },
    } else {}
  ),
  // Checkpoints that a kill at any moment cannot corrupt, with the random-generator states and
  // the running metrics saved in them, so that `allennlp train --recover` continues exactly
  // where the run was killed and reports the metrics of an uninterrupted run. The recovery
  // callbacks go first: later callbacks read the metrics they restore.
  checkpointer(keep):: { type: 'atomic', keep_most_recent_by_count: keep },
  recovery_callbacks:: [{ type: 'rng_checkpoint' }, { type: 'metrics_checkpoint' }],
  // TensorBoard curves in <serialization dir>/log at every optimizer step (loss, learning rate,
  // gradient norm, tokens/s; validation metrics at each epoch's end) and, every LOG_EVERY steps
  // (50, as Hugging Face's Trainer), a line in out.log and on the console with the step, loss,
  // learning rate, gradient norm, tokens/s and the time left. Goes last among the
  // callbacks, so that step times leave out their work at the start (the head warm-up).
  training_curves:: { type: 'training_curves', log_every: env.int('LOG_EVERY', 50, min=1) },

  cuda_device:: if std.length(self.cuda_devices) == 1 then self.cuda_devices[0] else env.int('CUDA_DEVICE', null),
}
