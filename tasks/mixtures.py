"""Named mixtures of the offline downstream suite, one per mixing strategy.

Importing this module registers, for every strategy in `t5lab.data.mixing.STRATEGIES`
(`proportional_k2_16` ... `proportional_k2_21`, `temperature_t2/4/8`, `equal`, `smoothed_s07`):

- `offline_<strategy>`: the downstream tasks of `tasks.downstream.OFFLINE_SUITE`;
- `offline_sotu_<strategy>`: the same plus the unsupervised `sotu_span_corruption`
  (T5's multi-task training mixes the unsupervised task with the supervised ones).

Rates are computed when a mixture is first used, so importing stays cheap. Any other mix is a
gin file away: `MIXTURE_OR_TASK_NAME = @define_mixture()` plus one `gin/mixtures/*.gin`.
"""

from t5lab.data.mixing import STRATEGIES, register_mixture
from tasks import pretraining  # noqa: F401  (registers sotu_span_corruption)
from tasks.downstream import OFFLINE_SUITE

UNSUPERVISED_TASK = "sotu_span_corruption"


def _register_all() -> None:
    for strategy, rate in STRATEGIES.items():
        register_mixture(name=f"offline_{strategy}", tasks=OFFLINE_SUITE, rate=rate)
        register_mixture(
            name=f"offline_sotu_{strategy}", tasks=(UNSUPERVISED_TASK, *OFFLINE_SUITE), rate=rate
        )


_register_all()
