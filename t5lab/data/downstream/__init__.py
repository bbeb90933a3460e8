"""Bundled downstream data (VADER, verse-aligned Bibles) and your own pair files, as examples.

`vader` and `bible` read the files in t5lab/assets/downstream and build text-to-text examples
per split; `text_pairs` reads your files; `source` serves examples to seqio; `splits` hashes.
Tasks are registered in `tasks/downstream.py`.
"""
