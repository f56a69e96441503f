// Environment variables with defaults and readable errors.
// `DAPT_PLUGIN_ENV` is provided by the dapt_plugin package when AllenNLP loads it (through
// `.allennlp_plugins`, the global plugins file or `--include-package dapt_plugin`); an error
// "undefined external variable: DAPT_PLUGIN_ENV" means the plugin was not loaded.
local env = std.parseJson(std.extVar('DAPT_PLUGIN_ENV'));
local isSet(name) = std.objectHas(env, name) && env[name] != '';
// A value as an error message shows it: in JSON quotes when spaces around it would not show.
local shown(value) = if std.stripChars(value, ' \t\r\n') == value then value else std.escapeStringJson(value);

local isDigits(s) = s != '' && std.all([std.member('0123456789', c) for c in std.stringChars(s)]);
local withoutSign(s, signs) = if s != '' && std.member(signs, s[0]) then s[1:] else s;
// at most 15 digits: exact as a double, which is what jsonnet's numbers are (longer ones failed
// in std.parseInt with a message that named no variable)
local isInteger(s) = isDigits(withoutSign(s, '-')) && std.length(withoutSign(s, '-')) <= 15;
// JSON's number syntax, which std.parseJson reads: 3, -1, 0.5, 2e-5, 1.5E+3; an exponent of at
// most two digits and at most 15 digits before the point, so that it is a finite double
local isNumber(s) = (
  local parts = std.split(std.asciiLower(s), 'e');
  local whole = std.split(withoutSign(parts[0], '-'), '.');
  std.length(parts) <= 2 && std.length(whole) <= 2
  && isDigits(whole[0]) && (whole[0] == '0' || whole[0][0] != '0') && std.length(whole[0]) <= 15
  && (std.length(whole) == 1 || isDigits(whole[1]))
  && (std.length(parts) == 1
      || (isDigits(withoutSign(parts[1], '+-')) && std.length(withoutSign(parts[1], '+-')) <= 2))
);

{
  shown(value):: shown(value),

  // A variable the user must set; `hint` says what to set it to.
  required(name, hint)::
    if isSet(name) then env[name]
    else error 'environment variable %s is not set: %s' % [name, hint],

  // A string variable, or `default` when unset (`default` may be null).
  str(name, default)::
    if isSet(name) then env[name] else default,

  // An integer variable, or `default` when unset; `min` and `max`, when given, are the smallest
  // and the largest value allowed.
  int(name, default, min=null, max=null)::
    local allowed = (
      if min != null && max != null then 'an integer from %d to %d' % [min, max]
      else if max != null then 'an integer of at most %d' % max
      else if min != null then 'an integer of at least %d' % min
      else 'an integer'
    );
    if !isSet(name) then default
    else if !isInteger(env[name]) || (min != null && std.parseInt(env[name]) < min)
            || (max != null && std.parseInt(env[name]) > max) then
      error 'environment variable %s must be %s; got %s' % [name, allowed, shown(env[name])]
    else std.parseInt(env[name]),

  // A number variable (0.1, 2e-5, 3), or `default` when unset; when given, it must be above
  // `above` and below `below`.
  float(name, default, above=null, below=null)::
    local bounds = std.join(' and ', (if above == null then [] else ['above %s' % above])
                                     + (if below == null then [] else ['below %s' % below]));
    local allowed = 'a number' + (if bounds == '' then '' else ' ' + bounds);
    if !isSet(name) then default
    else if !isNumber(env[name]) then
      error 'environment variable %s must be %s (such as 0.1 or 2e-5); got %s'
            % [name, allowed, shown(env[name])]
    else
      local value = std.parseJson(env[name]);
      if (above != null && value <= above) || (below != null && value >= below) then
        error 'environment variable %s must be %s; got %s' % [name, allowed, shown(env[name])]
      else value,

  // A string variable that must be one of `choices`, or `default` when unset.
  choice(name, default, choices)::
    if !isSet(name) then default
    else if std.member(choices, env[name]) then env[name]
    else error 'environment variable %s must be one of %s; got %s'
               % [name, std.join(', ', choices), shown(env[name])],

  bool(name, default)::
    if !isSet(name) then default
    else if std.member(['true', '1'], std.asciiLower(env[name])) then true
    else if std.member(['false', '0'], std.asciiLower(env[name])) then false
    else error 'environment variable %s must be true or false (or 1 or 0); got %s' % [name, shown(env[name])],

  // A comma-separated list of strings, or `default` when unset.
  list(name, default)::
    if isSet(name) then [s for s in std.split(env[name], ',') if s != ''] else default,
}
