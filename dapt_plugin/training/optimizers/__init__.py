from dapt_plugin.training.optimizers.apex_fused_adam import ApexFusedAdam

__all__ = ["ApexFusedAdam"]
