"""Registered seqio tasks and mixtures: `import tasks` registers all of them."""

from tasks import (  # noqa: F401  (importing registers; mixtures imports the tasks it mixes)
    downstream,
    glue,
    mixtures,
    paper,
    pretraining,
    text_to_text,
)
