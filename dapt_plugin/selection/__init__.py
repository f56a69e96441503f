"""
The back-end of `allennlp select-tapt-data` (and of the `select_knn`/`select_random` phases of
`allennlp adapt`): kNN-TAPT and RAND-TAPT selection of domain documents, in `tapt_selection.py`.
It needs the optional faiss (the plugin's `selection` extra), so it is imported only when used,
never by `import dapt_plugin`.
"""
