"""
The back-end of `allennlp select-tapt-data` (and of the `select_knn`/`select_random` phases of
`allennlp adapt`): kNN-TAPT and RAND-TAPT selection of domain sentences or documents, in
`tapt_selection.py`, with the units (`units.py`: the sentence splitter) and the embedders
(`lsa.py`, the default; `vampire.py`, the paper's kind of model).
It needs the optional faiss (the plugin's `selection` extra), so it is imported only when used,
never by `import dapt_plugin`.
"""
