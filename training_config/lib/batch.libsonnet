// The batch, said one way in every config: EFFECTIVE_BATCH sequences per optimizer step (the
// paper's batch size) and BATCH_SIZE sequences per device and forward pass; gradient accumulation
// makes up the rest (EFFECTIVE_BATCH / (BATCH_SIZE x number of workers) forward passes per step).
local devices = import 'devices.libsonnet';
local env = import 'env.libsonnet';

{
  // `effective_batch`: the recipe's; `batch_size`: the default BATCH_SIZE, or null for
  // EFFECTIVE_BATCH shared out over the workers (no accumulation).
  sizes(effective_batch, batch_size):: (
    local effective = env.int('EFFECTIVE_BATCH', effective_batch, min=1);
    local workers = devices.world_size;
    local default_per_device = if batch_size != null then batch_size else std.max(1, std.floor(effective / workers));
    local per_device = env.int('BATCH_SIZE', default_per_device, min=1);
    {
      per_device: per_device,
      accumulation: (
        if effective % (per_device * workers) != 0 then
          error 'EFFECTIVE_BATCH (%d) must be a multiple of BATCH_SIZE x number of workers (%d x %d: devices x NUM_NODES); change one of them' % [effective, per_device, workers]
        else effective / (per_device * workers)
      ),
    }
  ),
}
