// The trainer's checkpoints, recovery and progress reports, shared by every config of the plugin
// (the optimizer and schedule are in optim.libsonnet, the devices in devices.libsonnet).
local env = import 'env.libsonnet';

{
  // Checkpoints that a kill at any moment cannot corrupt, with the random-generator states and
  // the running metrics saved in them, so that `allennlp train --recover` continues exactly
  // where the run was killed and reports the metrics of an uninterrupted run (and refuses to go
  // on over data files changed since it started). The recovery callbacks go first: later
  // callbacks read the metrics they restore.
  checkpointer(keep):: { type: 'atomic', keep_most_recent_by_count: keep },
  recovery_callbacks:: [{ type: 'rng_checkpoint' }, { type: 'metrics_checkpoint' }],
  // TensorBoard curves in <serialization dir>/log at every optimizer step (loss, learning rate,
  // gradient norm, tokens/s; validation metrics at each epoch's end) and, every LOG_EVERY steps
  // (50, as Hugging Face's Trainer), a line in out.log and on the console with the step, loss,
  // learning rate, gradient norm, tokens/s and the time left. Goes last among the
  // callbacks, so that step times leave out their work at the start (the head warm-up).
  training_curves:: { type: 'training_curves', log_every: env.int('LOG_EVERY', 50, min=1) },
}
