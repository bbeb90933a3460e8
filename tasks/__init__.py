"""Registered seqio tasks and mixtures: `import tasks` registers all of them."""

from tasks import pretraining  # noqa: F401
