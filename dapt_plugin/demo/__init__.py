"""
`make demo` (`python -m dapt_plugin.demo`): the whole experiment of the paper, on data and a model
the project makes itself, on CPU, in a few minutes. See `run.py`; `data.py` writes its data.
"""
