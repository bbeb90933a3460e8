"""Bundled data: the SOTU corpus and the default vocabulary (see README.md here)."""
