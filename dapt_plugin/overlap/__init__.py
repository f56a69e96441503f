"""
The back-end of `allennlp vocab-overlap`: the vocabulary overlap of corpora (the paper's
Figure 2), in `vocab_overlap.py`. It needs the optional matplotlib (the plugin's `selection`
extra), so it is imported only when used, never by `import dapt_plugin`.
"""
