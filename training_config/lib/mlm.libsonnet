// The masked-LM continued-pretraining config shared by dapt.jsonnet and tapt.jsonnet.
// Each phase passes its recipe (paper values) and the data; everything a user may need to
// change on their machine comes from the environment, with the recipe's value as default.
local batch = import 'batch.libsonnet';
local devices = import 'devices.libsonnet';
local env = import 'env.libsonnet';
local optim = import 'optim.libsonnet';
local trainer = import 'trainer.libsonnet';

{
  // `num_epochs`: NUM_EPOCHS as tapt.jsonnet reads it (null when unset). A run is either
  // NUM_STEPS optimizer steps with NUM_CHECKPOINTS checkpoints (and validations) along them
  // (DAPT; TAPT with NUM_STEPS), or NUM_EPOCHS passes over the text with a checkpoint after
  // each (TAPT).
  config(recipe, train_path, validation_path, num_epochs=null):: (
    local model_name = env.required('MODEL_NAME', 'a model-hub name such as roberta-base, or the directory of an exported model (`exported_model` of a DAPT run)');
    local max_length = env.int('MAX_LENGTH', recipe.max_length, min=1);
    // Lets a model directory run its own Python code; only for sources you trust.
    local trust_remote_code = env.bool('TRUST_REMOTE_CODE', false);
    local sizes = batch.sizes(recipe.effective_batch, recipe.batch_size);
    local batch_size = sizes.per_device;
    local grad_accum = sizes.accumulation;
    local num_steps = env.int('NUM_STEPS', recipe.num_steps, min=1);  // null: passes over the text
    local num_checkpoints = env.int('NUM_CHECKPOINTS', null, min=1);
    // AllenNLP's epochs: the checkpoints along a NUM_STEPS run, or the passes over the text
    local trainer_epochs = (
      if num_steps != null then (
        if num_epochs != null then
          error 'NUM_EPOCHS (passes over the text) and NUM_STEPS (optimizer steps) both set the length of the run; set one of them (NUM_CHECKPOINTS sets the number of checkpoints along a NUM_STEPS run)'
        else if num_checkpoints != null then num_checkpoints
        else recipe.num_checkpoints
      )
      else if num_checkpoints != null then
        error 'NUM_CHECKPOINTS (%d) counts the checkpoints along a run of NUM_STEPS optimizer steps, but NUM_STEPS is not set: this run makes NUM_EPOCHS passes over the text, with a checkpoint after each; set NUM_STEPS or unset NUM_CHECKPOINTS' % num_checkpoints
      else if num_epochs != null then num_epochs
      else recipe.num_epochs
    );
    local steps_per_epoch = (
      if num_steps == null then null
      else if num_steps % trainer_epochs != 0 then
        error 'NUM_STEPS (%d) must be a multiple of NUM_CHECKPOINTS (%d), the number of checkpoints along the run' % [num_steps, trainer_epochs]
      else num_steps / trainer_epochs
    );
    local reader = {
      type: 'masked_lm_corpus',
      model_name: model_name,
      mode: env.choice('MLM_MODE', recipe.mode, ['document_windows', 'packed', 'line_by_line']),
      max_length: max_length,
      cache_directory: env.str('DAPT_PLUGIN_CACHE', null),
      trust_remote_code: trust_remote_code,
    };
    // numpy, and so AllenNLP's seeding, takes seeds below 2**32
    local seed = env.int('SEED', 0, min=0, max=4294967295);
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
                         + (if validation_path == null then { hold_out: 'exclude' } else {})
                         // batches of lines of similar lengths, equal in tokens (line_by_line,
                         // document_windows): less padding, the same weight per token; absent
                         // when off, so that the configs (and `allennlp adapt`'s fingerprints of
                         // runs from before the option) are as they were
                         + (
                           if !env.bool('GROUP_BY_LENGTH', false) then {}
                           else if reader.mode == 'packed' then
                             error 'GROUP_BY_LENGTH=true batches examples of similar lengths, but every example of MLM_MODE=packed has MAX_LENGTH tokens; unset GROUP_BY_LENGTH for this run (in `allennlp adapt`, set it in `settings.tapt` rather than `settings.all`), or set MLM_MODE to line_by_line or document_windows'
                           else { group_by_length: true }
                         );
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
        // paper, Table 13 (RoBERTa's rate)
        mlm_probability: env.float('MLM_PROBABILITY', 0.15, above=0, below=1),
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
        num_epochs: trainer_epochs,
        num_gradient_accumulation_steps: grad_accum,
        [if validation_path != null then 'validation_metric']: '-mlm_loss',
        optimizer: optim.adamw(env.float('LR', recipe.lr, above=0), recipe.weight_decay),
        learning_rate_scheduler: optim.linear_warmup_decay(),
        use_amp: env.bool('USE_AMP', false),
        // AllenNLP's check flags every Linear-before-LayerNorm bias in transformers' models:
        // a property of the pretrained architecture, not a configuration mistake.
        run_confidence_checks: false,
        cuda_device: devices.cuda_device,
        checkpointer: trainer.checkpointer(keep=2) {
          save_every_num_batches: env.int('CHECKPOINT_EVERY_BATCHES', null, min=1),
          save_every_num_seconds: env.int('CHECKPOINT_EVERY_SECONDS', null, min=1),
        },
        callbacks: trainer.recovery_callbacks + [
          // a checkpoint without a trained masked-LM head: train the head alone first (null:
          // three passes over the data, at most 1,000 steps; 0: keep the random head)
          { type: 'head_warmup', num_steps: env.int('HEAD_WARMUP_STEPS', null, min=0) },
          // held-out masked-LM loss before and after training (of HELDOUT_PATH, or of the 1% of
          // the training text the loader holds out when there is none)
          { type: 'heldout_mlm_loss' },
          // metrics.json: the share of the corpus's tokens one pass trains on
          { type: 'corpus_coverage' },
          { type: 'export_pretrained', every_num_steps: env.int('EXPORT_EVERY_STEPS', null, min=1) },
          trainer.training_curves,
        ],
      },
    } + devices.distributed(find_unused_parameters=false)
  ),
}
