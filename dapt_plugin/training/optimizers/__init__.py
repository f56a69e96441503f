from dapt_plugin.training.optimizers.apex_fused_adam import ApexFusedAdam
from dapt_plugin.training.optimizers.bert_adam import BertAdam

__all__ = ["ApexFusedAdam", "BertAdam"]
