"""
The plugin's training configs. Installed as the package `dapt_plugin.training_config` (see
setup.py), so that a wheel carries them; `dapt_plugin.common.configs` finds them, in a clone and in
any install alike.
"""
