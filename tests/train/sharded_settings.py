"""The micro training run that every sharded scenario repeats (on 1 to 8 devices, 1 or 2 hosts).

Global batch 8 read from 2 data shards: the batches are the same whatever the number of
hosts, so every layout must reproduce the one-device losses.
"""

from t5lab.train import optimizers
from t5lab.train.partitioning import partitioning
from tests.conftest import MICRO_CONFIG

STEPS = 3
LENGTHS = {"inputs": 32, "targets": 12}
# Adafactor factors any matrix with two dims >= 16: the micro model then has factored states.
OPTIMIZER = optimizers.adafactor(
    learning_rate=optimizers.rsqrt_schedule(warmup_steps=10, linear_warmup=True),
    min_dim_size_to_factor=16,
)


def train_kwargs(model_dir, *, mesh_shape, rules, **overrides) -> dict:
    kwargs = dict(
        model_dir=str(model_dir),
        mixture_or_task_name="sotu_span_corruption",
        task_feature_lengths=LENGTHS,
        model_config=MICRO_CONFIG,
        optimizer=OPTIMIZER,
        train_steps=STEPS,
        batch_size=8,
        data_shards=2,
        eval_batches=0,
        checkpoint_every_steps=STEPS,
        log_every_steps=1,
        show_progress=False,
        partitioning=partitioning(mesh_shape=mesh_shape, logical_axis_rules=rules),
    )
    kwargs.update(overrides)
    return kwargs
