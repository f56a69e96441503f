"""What training uses besides the model: callbacks, checkpointers, schedulers, optimizers, metrics."""

from dapt_plugin.training import callbacks, checkpointers, learning_rate_schedulers, optimizers

__all__ = ["callbacks", "checkpointers", "learning_rate_schedulers", "optimizers"]
