// The masked-LM continued-pretraining config shared by dapt.jsonnet and tapt.jsonnet.
// Each phase passes its recipe (paper values) and the data; everything a user may need to
// change on their machine comes from the environment, with the recipe's value as default.
local env = import 'env.libsonnet';
local optim = import 'optim.libsonnet';

{
  config(recipe, train_path, validation_path):: (
    local model_name = env.required('MODEL_NAME', 'a model-hub name such as roberta-base, or the directory of an exported model (`exported_model` of a DAPT run)');
    local max_length = env.int('MAX_LENGTH', recipe.max_length, min=1);
    // Lets a model directory run its own Python code; only for sources you trust.
    local trust_remote_code = env.bool('TRUST_REMOTE_CODE', false);
    local batch_size = env.int('BATCH_SIZE', recipe.batch_size, min=1);  // per device and step
    local effective_batch = env.int('EFFECTIVE_BATCH', recipe.effective_batch, min=1);
    local per_step = batch_size * optim.world_size;
    local grad_accum = (
      if effective_batch % per_step != 0 then
        error 'EFFECTIVE_BATCH (%d) must be a multiple of BATCH_SIZE x number of workers (%d x %d: devices x NUM_NODES); change one of them' % [effective_batch, batch_size, optim.world_size]
      else effective_batch / per_step
    );
    local num_epochs = env.int('NUM_EPOCHS', recipe.num_epochs, min=1);
    local num_steps = env.int('NUM_STEPS', recipe.num_steps, min=1);  // null: `num_epochs` passes over the data
    local steps_per_epoch = (
      if num_steps == null then null
      else if num_steps % num_epochs != 0 then
        error 'NUM_STEPS (%d) must be a multiple of NUM_EPOCHS (%d), the number of checkpoints along the run' % [num_steps, num_epochs]
      else num_steps / num_epochs
    );
    local reader = {
      type: 'masked_lm_corpus',
      model_name: model_name,
      mode: env.str('MLM_MODE', recipe.mode),
      max_length: max_length,
      cache_directory: env.str('DAPT_PLUGIN_CACHE', null),
      trust_remote_code: trust_remote_code,
    };
    local seed = env.int('SEED', 0, min=0);
    local loader(shuffle, batches_per_epoch) = {
      type: 'masked_lm_batches',
      batch_size: batch_size,
      shuffle: shuffle,
      seed: seed,  // the same on every worker: they split one order of the examples
      batches_per_epoch: batches_per_epoch,
      num_workers: env.int('NUM_WORKERS', 0, min=0),
    };
    // without HELDOUT_PATH, 1% of the training text (at most 2,000 examples) is held out
    local train_loader = loader(true, if steps_per_epoch == null then null else steps_per_epoch * grad_accum)
                         + (if validation_path == null then { hold_out: 'exclude' } else {});
    {
      random_seed: seed,
      numpy_seed: seed,
      pytorch_seed: seed,
      vocabulary: { type: 'empty' },
      dataset_reader: reader,
      train_data_path: train_path,
      [if validation_path != null then 'validation_data_path']: validation_path,
      model: {
        type: 'dapt_masked_lm',
        model_name: model_name,
        mlm_probability: env.float('MLM_PROBABILITY', 0.15),  // paper, Table 13 (RoBERTa's rate)
        whole_word_masking: env.bool('WHOLE_WORD_MASKING', false),
        masking_seed: seed,
        bf16: env.bool('BF16', false),
        gradient_checkpointing: env.bool('GRADIENT_CHECKPOINTING', false),
        trust_remote_code: trust_remote_code,
      },
      data_loader: train_loader,
      // Also what `allennlp evaluate` uses on an archive of this config: one pass, in order.
      validation_data_loader: loader(false, null),
      trainer: {
        num_epochs: num_epochs,
        num_gradient_accumulation_steps: grad_accum,
        [if validation_path != null then 'validation_metric']: '-mlm_loss',
        optimizer: optim.adamw(env.float('LR', recipe.lr), recipe.weight_decay),
        learning_rate_scheduler: optim.linear_warmup_decay(),
        use_amp: env.bool('USE_AMP', false),
        // AllenNLP's check flags every Linear-before-LayerNorm bias in transformers' models:
        // a property of the pretrained architecture, not a configuration mistake.
        run_confidence_checks: false,
        cuda_device: optim.cuda_device,
        checkpointer: optim.checkpointer(keep=2) {
          save_every_num_batches: env.int('CHECKPOINT_EVERY_BATCHES', null, min=1),
          save_every_num_seconds: env.int('CHECKPOINT_EVERY_SECONDS', null, min=1),
        },
        callbacks: optim.recovery_callbacks + [
          // a checkpoint without a trained masked-LM head: train the head alone first (null:
          // three passes over the data, at most 1,000 steps; 0: keep the random head)
          { type: 'head_warmup', num_steps: env.int('HEAD_WARMUP_STEPS', null, min=0) },
          // held-out masked-LM loss before and after training (of HELDOUT_PATH, or of the 1% of
          // the training text the loader holds out when there is none)
          { type: 'heldout_mlm_loss' },
          // metrics.json: the share of the corpus's tokens one pass trains on
          { type: 'corpus_coverage' },
          { type: 'export_pretrained', every_num_steps: env.int('EXPORT_EVERY_STEPS', null, min=1) },
          optim.training_curves,
        ],
      },
    } + optim.distributed(find_unused_parameters=false)
  ),
}
