"""
The choices of a TAPT data selection, in a module without the selection's optional dependencies:
`select-tapt-data` checks them, and so does `allennlp adapt` when it reads an experiment file,
before any phase runs.
"""

METHODS = ("knn", "random")
EMBEDDERS = ("lsa", "vampire")
