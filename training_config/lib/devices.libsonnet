// Devices and distribution shared by every config of the plugin.
//
// CUDA_DEVICES picks the devices: "0" one GPU, "0,1,2,3" data-parallel on four GPUs (AllenNLP's
// `distributed` settings), "-1" the CPU, "-1,-1" two CPU workers; unset: the first GPU if there
// is one, else the CPU. Several machines: NUM_NODES, MASTER_ADDRESS (or MASTER_ADDR),
// MASTER_PORT (the same on every node) and `allennlp train ... --node-rank K` on node K.
local env = import 'env.libsonnet';

local isDevice(d) = (
  local digits = if std.startsWith(d, '-') then d[1:] else d;
  digits != '' && std.all([std.member('0123456789', c) for c in std.stringChars(digits)])
);

{
  cuda_devices:: [
    if isDevice(d) then std.parseInt(d)
    else error 'environment variable CUDA_DEVICES must be comma-separated device numbers, such as 0 (one GPU), 0,1 (two GPUs), -1 (the CPU) or -1,-1 (two CPU workers); got %s' % std.join(',', env.list('CUDA_DEVICES', []))
    for d in env.list('CUDA_DEVICES', [])
  ],
  num_nodes:: env.int('NUM_NODES', 1, min=1),
  primary_address:: env.str('MASTER_ADDRESS', env.str('MASTER_ADDR', null)),
  // workers taking part in each optimizer step
  world_size:: std.max(1, std.length(self.cuda_devices)) * self.num_nodes,
  // the trainer's `cuda_device`: the one device of CUDA_DEVICES; null (AllenNLP's choice: the
  // first GPU if there is one) when it is unset or names several (`distributed` places the workers)
  cuda_device:: if std.length(self.cuda_devices) == 1 then self.cuda_devices[0] else null,
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
}
