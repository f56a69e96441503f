"""
Helpers of the tests and benchmarks (and the demo's model), never imported by `import dapt_plugin`:
tiny models built locally (`tiny_model.py`), made-up text (`text.py`, `topics.py`), killing runs
at chosen moments (`kill.py`) and the `allennlp` command line run in-process (`cli.py`).
"""
