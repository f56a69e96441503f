"""
The back-end of `allennlp vocab-overlap`: the vocabulary overlap of corpora (the paper's
Figure 2), in `vocab_overlap.py`. Its heatmap is drawn with matplotlib, a dependency of the
plugin; the package is imported only when used, never by `import dapt_plugin`.
"""
