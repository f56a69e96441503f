"""
The back-end of `allennlp select-tapt-data` (and of the `select_knn`/`select_random` phases of
`allennlp adapt`): kNN-TAPT and RAND-TAPT selection of domain sentences or documents, in
`tapt_selection.py`, with the units (`units.py`: the sentence splitter) and the embedders
(`lsa.py`, the default; `vampire.py`, the paper's kind of model).
kNN selection needs the optional faiss (the plugin's `selection` extra), imported when a kNN
selection starts; `import dapt_plugin` leaves this package out, and `--include-package
dapt_plugin` imports it without faiss.
"""
