from dapt_plugin.training.checkpointers.atomic_checkpointer import AtomicCheckpointer

__all__ = ["AtomicCheckpointer"]
