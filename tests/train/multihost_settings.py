"""The run both the two-process workers and the one-process reference train."""

from t5lab.train import optimizers
from t5lab.train.partitioning import partitioning
from tests.conftest import MICRO_CONFIG

STEPS = 3


def train_kwargs(model_dir: str) -> dict:
    """Global batch 8 read from 2 data shards: the same batches on 1 host or on 2."""
    return dict(
        model_dir=str(model_dir),
        mixture_or_task_name="sotu_span_corruption",
        task_feature_lengths={"inputs": 32, "targets": 12},
        model_config=MICRO_CONFIG,
        optimizer=optimizers.adafactor(
            learning_rate=optimizers.rsqrt_schedule(warmup_steps=10, linear_warmup=True)
        ),
        train_steps=STEPS,
        batch_size=8,
        data_shards=2,
        eval_batches=1,
        eval_every_steps=STEPS,
        checkpoint_every_steps=STEPS,
        log_every_steps=1,
        show_progress=False,
        partitioning=partitioning(mesh_shape={"data": -1}, logical_axis_rules="data_parallel"),
    )
