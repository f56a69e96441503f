"""
The choices of a TAPT data selection, in a module without the selection's optional dependencies:
`select-tapt-data` checks them, and so does `allennlp adapt` when it reads an experiment file,
before any phase runs.
"""

METHODS = ("knn", "random")
EMBEDDERS = ("lsa", "vampire")
# the units of the domain that a selection searches or samples, by default (the paper's 1M)
POOL_SIZE = 1000000
