"""The `train()` loop: data, model, optimizer, checkpoints and metrics wired together.

A plain keyword-only function: the CLI binds its arguments with gin, tests call it directly.
Host work per step is one `next()` on the data iterator and one jitted call; metrics are
fetched from the device only every `log_every_steps`, at evaluations and at checkpoints.
"""

import dataclasses
import os
import signal
import time
from collections.abc import Mapping

import jax
import numpy as np
import optax
import tensorflow as tf
from jax.experimental import multihost_utils

from t5lab.data.pipeline import batched_dataset, output_vocabulary
from t5lab.errors import UserError
from t5lab.models import T5Config, T5Transformer
from t5lab.models.electra import Electra, ElectraConfig
from t5lab.train import distributed, electra_steps, fs, steps
from t5lab.train import partitioning as sharding
from t5lab.train.checkpoints import Checkpointer
from t5lab.train.host_input import (
    HostInput,
    global_arrays,
    host_eval_batches,
    host_slice,
    input_layout,
)
from t5lab.train.reporting import MetricsWriter, ProgressDisplay
from t5lab.train.steps import evaluate_batches


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the last checkpoint written before it is kept."""


@dataclasses.dataclass
class TrainSummary:
    model_dir: str
    start_step: int
    final_step: int
    stopped_by: str | None  # a signal name when interrupted, None when completed
    train_loss: float | None
    first_validation: dict | None
    last_validation: dict | None
    seconds: float
    tokens_per_second: float
    num_params: int = 0


def prepare_model_dir(model_dir: str) -> str:
    """Create MODEL_DIR (a local path or a URL such as gs://...) or explain in one line why
    it cannot be used."""
    if not model_dir:
        raise UserError("MODEL_DIR is not set: pass --gin.MODEL_DIR='\"path\"'")
    try:
        tf.io.gfile.makedirs(model_dir)
        probe = os.path.join(model_dir, ".write_test")
        fs.write_text(probe, "ok")
        tf.io.gfile.remove(probe)
    except fs.FILE_ERRORS as error:
        raise UserError(
            f"MODEL_DIR {model_dir!r} is not writable: {fs.error_text(error)}"
        ) from None
    return model_dir


def write_config(*, model_dir: str, config_text: str) -> None:
    """The run's effective gin configuration, as MODEL_DIR/config.gin."""
    fs.write_text(os.path.join(model_dir, "config.gin"), config_text)


def resolve_model_config(
    config: T5Config | ElectraConfig, *, vocabulary_size: int
) -> T5Config | ElectraConfig:
    """Fill a vocab_size of 0 from the task vocabulary (padded to 128) and check it fits."""
    padded = -(-vocabulary_size // 128) * 128
    if not config.vocab_size:
        config = config.with_vocab_size(padded)
    if config.vocab_size < vocabulary_size:
        raise UserError(
            f"model vocab_size {config.vocab_size} is smaller than the task vocabulary "
            f"({vocabulary_size} ids): set T5Config.vocab_size = {padded} or leave it 0"
        )
    if isinstance(config, ElectraConfig) and not config.mask_id:
        config = config.replace(mask_id=vocabulary_size - 1)  # <extra_id_0>, BERT-style [MASK]
    return config


def config_for_task(
    config: T5Config | ElectraConfig, *, mixture_or_task_name: str
) -> T5Config | ElectraConfig:
    """`resolve_model_config` against the task's own output vocabulary."""
    vocabulary = output_vocabulary(mixture_or_task_name)
    return resolve_model_config(config, vocabulary_size=vocabulary.vocab_size)


def _initial_params(path: str, fresh):
    """Params to start from, checked against the model: a converted checkpoint directory
    (`t5lab convert from-hf`) or another run's MODEL_DIR (its latest checkpoint)."""
    from t5lab.convert.native import load_params
    from t5lab.train.checkpoints import restore_run_params

    if tf.io.gfile.isdir(os.path.join(path, "params")):
        loaded = load_params(path=path)
    elif tf.io.gfile.isdir(path):
        loaded, _ = restore_run_params(model_dir=path)
    else:
        raise UserError(f"initial checkpoint {path!r} does not exist")
    loaded = _same_layer_layout(loaded, like=fresh)
    want = jax.tree_util.tree_map_with_path(lambda p, x: (jax.tree_util.keystr(p), x.shape), fresh)
    got = jax.tree_util.tree_map_with_path(lambda p, x: (jax.tree_util.keystr(p), x.shape), loaded)
    if sorted(jax.tree.leaves(want, is_leaf=lambda x: isinstance(x, tuple))) != sorted(
        jax.tree.leaves(got, is_leaf=lambda x: isinstance(x, tuple))
    ):
        raise UserError(
            f"initial checkpoint {path!r} does not fit this model: include its model.gin "
            "(--gin_file=DIR/model.gin) so the architecture matches"
        )
    return jax.tree.map(lambda x, ref: np.asarray(x, ref.dtype), loaded, fresh)


def _same_layer_layout(params, *, like):
    """Scanned (`scan_layers=True`) and unrolled stacks hold the same weights: convert."""
    from t5lab.models.layer_stack import (
        has_scanned_layers,
        stack_layer_params,
        unstack_layer_params,
    )

    if has_scanned_layers(like) and not has_scanned_layers(params):
        return stack_layer_params(params=params)
    if has_scanned_layers(params) and not has_scanned_layers(like):
        return unstack_layer_params(params=params)
    return params


def _same_on_every_host(count: int) -> int:
    """The smallest of the hosts' counts, so every host runs the same number of steps."""
    if jax.process_count() == 1:
        return count
    return int(np.min(multihost_utils.process_allgather(np.int32(count))))


def model_and_steps(config: T5Config | ElectraConfig):
    """The Flax module and the module of step functions (same signatures) for a config."""
    if isinstance(config, ElectraConfig):
        return Electra(config), electra_steps
    return T5Transformer(config), steps


class _StopRequests:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave handlers alone
                pass
        return self

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def train(
    *,
    model_dir: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    model_config: T5Config | ElectraConfig,
    optimizer: optax.GradientTransformation,
    train_steps: int,
    batch_size: int = 32,
    seed: int = 0,
    pack: bool = True,
    num_microbatches: int = 1,
    label_smoothing: float = 0.0,
    z_loss: float = 1e-4,
    eval_every_steps: int = 100,
    eval_batches: int = 4,
    checkpoint_every_steps: int = 100,
    keep_checkpoints: int = 3,
    log_every_steps: int = 10,
    validation_split: str = "validation",
    config_text: str = "",
    show_progress: bool = True,
    initial_checkpoint: str = "",
    partitioning: sharding.Partitioning | None = None,
    data_shards: int = 0,
    coordinator_address: str = "",
    num_processes: int = 0,
    process_id: int = -1,
) -> TrainSummary:
    """Pretrain or fine-tune, resuming from the latest checkpoint in `model_dir` if any.

    `partitioning` (mesh shape + logical axis rules) says how the work is spread over
    devices; None = data parallel over all of them. `batch_size` is global. Multi-host:
    every process calls this with the same arguments, plus `coordinator_address`,
    `num_processes` and its own `process_id` (found automatically on Cloud TPU pods).
    """
    prepare_model_dir(model_dir)
    distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
    if config_text and jax.process_index() == 0:
        write_config(model_dir=model_dir, config_text=config_text)
    for name, value in (
        ("TRAIN_STEPS", train_steps),
        ("train.eval_every_steps", eval_every_steps),
        ("train.checkpoint_every_steps", checkpoint_every_steps),
        ("train.log_every_steps", log_every_steps),
        ("train.keep_checkpoints", keep_checkpoints),
    ):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    config = config_for_task(model_config, mixture_or_task_name=mixture_or_task_name)
    model, step_fns = model_and_steps(config)
    layout = partitioning or sharding.partitioning()
    mesh = sharding.make_mesh(layout=layout)
    batch_sharding = jax.sharding.NamedSharding(mesh, sharding.batch_spec(rules=layout.rules))
    sharding.check_batch_split(
        batch_size=batch_size,
        num_microbatches=num_microbatches,
        data_parallel=sharding.data_parallel_size(mesh_sizes=dict(mesh.shape), rules=layout.rules),
    )
    # Shapes first: a parameter that does not split over the mesh fails before any data work.
    shapes = {  # what EncDecFeatureConverter pads every batch to
        "encoder_input_tokens": (batch_size, task_feature_lengths["inputs"]),
        "decoder_input_tokens": (batch_size, task_feature_lengths["targets"]),
    }
    init_rng, dropout_rng = (
        sharding.put_replicated_host_value(key, mesh=mesh)
        for key in np.asarray(jax.random.split(jax.random.PRNGKey(seed)))
    )
    init = step_fns.init_state_fn(model=model, tx=optimizer, input_shapes=shapes)
    abstract_variables = jax.eval_shape(
        step_fns.init_variables_fn(model=model, input_shapes=shapes), init_rng
    )
    abstract_state = jax.eval_shape(init, init_rng)
    shardings = sharding.step_shardings(
        mesh=mesh,
        rules=layout.rules,
        abstract_variables=abstract_variables,
        abstract_state=abstract_state,
    )
    inputs = input_layout(
        global_batch=batch_size,
        data_shards=data_shards,
        host=host_slice(sharding=batch_sharding, global_batch=batch_size),
    )

    def shard_dataset(split: str, *, shuffle: bool):
        return lambda index, count, rows: batched_dataset(
            mixture_or_task_name=mixture_or_task_name,
            task_feature_lengths=task_feature_lengths,
            split=split,
            batch_size=rows,
            shuffle=shuffle,
            seed=seed,
            pack=pack,
            shard_index=index,
            num_shards=count,
        )

    def to_global(local_batch):
        return global_arrays(local_batch, sharding=batch_sharding, rows=batch_size)

    iterator = HostInput(layout=inputs, dataset=shard_dataset("train", shuffle=True))
    local_validation = host_eval_batches(
        layout=inputs, dataset=shard_dataset(validation_split, shuffle=False), count=eval_batches
    )
    validation = [
        to_global(b) for b in local_validation[: _same_on_every_host(len(local_validation))]
    ]
    if eval_batches and not validation:
        raise UserError(
            f"split {validation_split!r} of {mixture_or_task_name!r} gives no batch of "
            f"{batch_size}: lower batch_size or eval_batches"
        )
    checkpointer = Checkpointer(model_dir=model_dir, keep=keep_checkpoints)
    latest = checkpointer.latest_step()
    if latest is None:
        with sharding.activate(mesh=mesh, rules=layout.rules):
            state = jax.jit(init, out_shardings=shardings.state)(init_rng)
        if initial_checkpoint:
            loaded = _initial_params(initial_checkpoint, state.params)
            state = state.replace(params=sharding.put_host_tree(loaded, shardings=shardings.params))
    else:
        abstract = sharding.with_shardings(abstract_state, shardings.state)
        state = checkpointer.restore(step=latest, abstract_state=abstract, iterator=iterator)

    train_step = step_fns.make_train_step(
        model=model,
        num_microbatches=num_microbatches,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        shardings=shardings,
    )
    eval_step = step_fns.make_eval_step(
        model=model, label_smoothing=label_smoothing, z_loss=z_loss, shardings=shardings
    )
    start_step = int(state.step)
    lead_host = jax.process_index() == 0
    writer = MetricsWriter(model_dir=model_dir, enabled=lead_host)
    display = ProgressDisplay(
        total_steps=train_steps, start_step=start_step, enabled=show_progress and lead_host
    )
    first_validation = last_validation = None
    last_checkpoint = latest
    pending: list[dict] = []
    train_loss = None
    tokens_per_step = batch_size * (
        task_feature_lengths["inputs"] + task_feature_lengths["targets"]
    )
    clock = {"time": time.perf_counter(), "step": start_step}
    started = time.perf_counter()
    step = start_step

    def flush_metrics() -> None:
        nonlocal train_loss
        if not pending:
            return
        fetched = jax.device_get(pending)
        pending.clear()
        for offset, metrics in enumerate(fetched):
            if metrics["nonfinite"]:
                bad_step = step - len(fetched) + offset + 1
                kept = f"step {last_checkpoint}" if last_checkpoint else "none written yet"
                raise TrainingDiverged(
                    f"training diverged at step {bad_step} (loss {metrics['loss']}, parameter "
                    f"norm {metrics['param_norm']}); stopping. Last good "
                    f"checkpoint: {kept}. Lower the learning rate or check the data."
                )
        now = time.perf_counter()
        speed = tokens_per_step * (step - clock["step"]) / max(now - clock["time"], 1e-9)
        clock.update(time=now, step=step)
        means = {
            key: float(np.mean([m[key] for m in fetched]))
            for key in ("loss", "z_loss", "accuracy", "grad_norm", "param_norm")
        }
        means["tokens_per_second"] = speed
        train_loss = means["loss"]
        writer.write(split="train", step=step, metrics=means)
        display.update(step=step, loss=train_loss, tokens_per_second=speed)

    def run_eval() -> dict:
        result = evaluate_batches(eval_step, state.params, validation)
        writer.write(split="validation", step=step, metrics=result)
        display.message(
            f"step {step}: validation loss {result['loss']:.4f}, accuracy {result['accuracy']:.4f}"
        )
        return result

    try:
        with _StopRequests() as stop, sharding.activate(mesh=mesh, rules=layout.rules):
            if validation and start_step == 0:
                first_validation = run_eval()
            while step < train_steps and stop.signal_name is None:
                batch = to_global(next(iterator))
                state, metrics = train_step(state, batch, dropout_rng)
                step += 1
                pending.append(metrics)
                if step % log_every_steps == 0 or step == train_steps:
                    flush_metrics()
                if validation and (step % eval_every_steps == 0 or step == train_steps):
                    last_validation = run_eval()
                if step % checkpoint_every_steps == 0 or step == train_steps:
                    flush_metrics()
                    checkpointer.save(step=step, state=state, iterator=iterator)
                    last_checkpoint = step
            if stop.signal_name is not None:
                flush_metrics()
                checkpointer.save(step=step, state=state, iterator=iterator)
    finally:
        display.close()
        writer.close()
        checkpointer.close()
    seconds = time.perf_counter() - started
    return TrainSummary(
        model_dir=model_dir,
        start_step=start_step,
        final_step=step,
        stopped_by=stop.signal_name,
        train_loss=train_loss,
        first_validation=first_validation,
        last_validation=last_validation,
        seconds=seconds,
        tokens_per_second=tokens_per_step * (step - start_step) / max(seconds, 1e-9),
        num_params=sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params)),
    )
