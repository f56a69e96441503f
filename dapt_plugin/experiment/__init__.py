"""
The paper's experiment in one command (`allennlp adapt`): the same classifier fine-tuned from a
base model, after DAPT, after TAPT and after DAPT+TAPT (and kNN-/RAND-TAPT), over several seeds,
in one table. `spec.py` reads and checks the experiment file; `runner.py` plans and runs the
phases and writes the results.
"""
