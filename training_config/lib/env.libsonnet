// Environment variables with defaults and readable errors.
// `DAPT_PLUGIN_ENV` is provided by the dapt_plugin package when AllenNLP loads it (through
// `.allennlp_plugins`, the global plugins file or `--include-package dapt_plugin`); an error
// "undefined external variable: DAPT_PLUGIN_ENV" means the plugin was not loaded.
local env = std.parseJson(std.extVar('DAPT_PLUGIN_ENV'));
local isSet(name) = std.objectHas(env, name) && env[name] != '';

{
  // A variable the user must set; `hint` says what to set it to.
  required(name, hint)::
    if isSet(name) then env[name]
    else error 'environment variable %s is not set: %s' % [name, hint],

  // A string variable, or `default` when unset (`default` may be null).
  str(name, default)::
    if isSet(name) then env[name] else default,

  int(name, default)::
    if isSet(name) then std.parseInt(env[name]) else default,

  float(name, default)::
    if isSet(name) then std.parseJson(env[name]) else default,

  bool(name, default)::
    if !isSet(name) then default
    else if std.member(['true', '1'], std.asciiLower(env[name])) then true
    else if std.member(['false', '0'], std.asciiLower(env[name])) then false
    else error 'environment variable %s must be true or false (or 1 or 0); got %s' % [name, env[name]],

  // A comma-separated list of strings, or `default` when unset.
  list(name, default)::
    if isSet(name) then [s for s in std.split(env[name], ',') if s != ''] else default,
}
