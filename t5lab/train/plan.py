"""Plan a training run before paying for it: bytes per device, FLOPs and step time.

Nothing is allocated. Parameter and optimizer-state shapes come from `jax.eval_shape`; their
logical axis names from the model's `nn.with_logical_partitioning` annotations; a rule table
(one of the trainer's `t5lab.train.partitioning.RULE_SETS`, or explicit pairs) maps those
names onto the mesh axes `data`, `fsdp` and `model`, and each device's share is the shard of
every array (rounded up where a dimension does not divide: reported, since the trainer
refuses such a sharding). Activations come from an inventory of the tensors the backward
pass keeps (`t5lab.train.activations`), sharded the same way. FLOPs are
`t5lab.train.flops.encoder_decoder_flops`; the step time divides them by the devices'
published bf16 peak times an assumed MFU, which is a knob, not a measurement.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from t5lab.errors import UserError
from t5lab.models import T5Config, T5Transformer
from t5lab.train.activations import REMAT_POLICIES, activation_tensors
from t5lab.train.flops import encoder_decoder_flops
from t5lab.train.hardware import Chip, get_chip
from t5lab.train.partitioning import rule_set, rule_set_name


def shard_shape(
    *,
    shape: Sequence[int],
    logical_axes: Sequence[str | None] | None,
    rules: Sequence[tuple[str, Any]],
    mesh: Mapping[str, int],
) -> tuple[tuple[int, ...], list[str]]:
    """One device's block of an array, and a note per dimension the mesh does not divide."""
    if logical_axes is None:
        return tuple(shape), []
    names = tuple(logical_axes) + (None,) * (len(shape) - len(logical_axes))
    spec = nn.logical_to_mesh_axes(names, list(rules))
    block, uneven = [], []
    for size, name, axes in zip(shape, names, spec, strict=True):
        axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
        ways = math.prod(mesh.get(axis, 1) for axis in axes)
        if size % ways:
            uneven.append(f"{name} ({size}) over {'x'.join(axes)} ({ways})")
        block.append(-(-size // ways))
    return tuple(block), uneven


@dataclasses.dataclass(frozen=True)
class ArrayBytes:
    """Bytes of a group of arrays: all of them, and one device's share."""

    total: int
    per_device: int
    uneven: tuple[str, ...] = ()


def _sum_bytes(items, *, rules, mesh) -> ArrayBytes:
    """items: (shape, itemsize, logical axes, count)."""
    total = per_device = 0
    uneven: list[str] = []
    for shape, itemsize, axes, count in items:
        block, notes = shard_shape(shape=shape, logical_axes=axes, rules=rules, mesh=mesh)
        total += count * math.prod(shape) * itemsize
        per_device += count * math.prod(block) * itemsize
        uneven += [n for n in notes if n not in uneven]
    return ArrayBytes(total, per_device, tuple(uneven))


def _path_names(path) -> tuple[str, ...]:
    return tuple(
        str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))) for key in path
    )


@functools.lru_cache(maxsize=8)
def abstract_params(config: T5Config) -> tuple[dict, dict]:
    """(shape tree, logical-axes tree) of the parameters, from `jax.eval_shape` of init."""
    tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    init = functools.partial(T5Transformer(config).init, enable_dropout=False)
    variables = jax.eval_shape(init, jax.random.PRNGKey(0), tokens, tokens)
    return nn.unbox(variables)["params"], nn.get_partition_spec(variables)["params"]


def _param_table(config: T5Config) -> dict[tuple[str, ...], tuple[tuple[int, ...], tuple, int]]:
    """Parameter path -> (shape, logical axes, bytes per element)."""
    shapes, specs = abstract_params(config)
    flat_specs = dict(
        (_path_names(p), s)
        for p, s in jax.tree_util.tree_flatten_with_path(
            specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec)
        )[0]
    )
    return {
        _path_names(p): (
            tuple(leaf.shape),
            tuple(flat_specs[_path_names(p)]),
            np.dtype(leaf.dtype).itemsize,
        )
        for p, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]
    }


def _state_axes(path: tuple[str, ...], shape: tuple[int, ...], params: Mapping) -> tuple | None:
    """Logical axes of an optimizer-state leaf: those of the parameter it belongs to (the
    parameter path is a suffix of the state path), minus the dimension a factored moment
    drops; None (replicated) for scalars and placeholders."""
    for start in range(len(path)):
        owner = params.get(path[start:])
        if owner is None:
            continue
        owner_shape, owner_axes, _ = owner
        if shape == owner_shape:
            return owner_axes
        for dropped in reversed(range(len(owner_shape))):  # ties: as the trainer's specs
            if owner_shape[:dropped] + owner_shape[dropped + 1 :] == shape:
                return owner_axes[:dropped] + owner_axes[dropped + 1 :]
        return None
    return None


def param_bytes(*, config: T5Config, rules, mesh) -> ArrayBytes:
    params = _param_table(config)
    items = [(shape, itemsize, axes, 1) for shape, axes, itemsize in params.values()]
    return _sum_bytes(items, rules=rules, mesh=mesh)


def optimizer_bytes(
    *, config: T5Config, optimizer: optax.GradientTransformation, rules, mesh
) -> ArrayBytes:
    """Optimizer state from `jax.eval_shape(optimizer.init, params)`, sharded like params."""
    shapes, _ = abstract_params(config)
    state = jax.eval_shape(optimizer.init, shapes)
    params = _param_table(config)
    items = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        shape = tuple(leaf.shape)
        axes = _state_axes(_path_names(path), shape, params)
        items.append((shape, np.dtype(leaf.dtype).itemsize, axes, 1))
    return _sum_bytes(items, rules=rules, mesh=mesh)


def _gib(size: float) -> str:
    return f"{size / 2**30:,.2f} GiB"


@dataclasses.dataclass(frozen=True)
class Plan:
    config: T5Config
    optimizer_name: str
    batch_size: int
    inputs_length: int
    targets_length: int
    num_microbatches: int
    remat: str
    mesh: dict[str, int]
    rules_name: str
    chip: Chip
    assumed_mfu: float
    train_steps: int | None
    param_count: int
    params: ArrayBytes
    optimizer: ArrayBytes
    gradients: ArrayBytes
    activations: ArrayBytes
    flops: dict
    warnings: tuple[str, ...]

    @property
    def devices(self) -> int:
        return math.prod(self.mesh.values())

    @property
    def bytes_per_device(self) -> int:
        parts = (self.params, self.optimizer, self.gradients, self.activations)
        return sum(p.per_device for p in parts)

    @property
    def step_seconds(self) -> float:
        return self.flops["total"] / (self.devices * self.chip.peak_bf16_flops * self.assumed_mfu)

    @property
    def fits(self) -> bool:
        return self.bytes_per_device <= self.chip.hbm_bytes


def plan_training(
    *,
    config: T5Config,
    optimizer: optax.GradientTransformation,
    optimizer_name: str,
    batch_size: int,
    inputs_length: int,
    targets_length: int,
    mesh: Mapping[str, int],
    rules: str | Sequence[tuple[str, Any]] = "data_parallel",
    chip_name: str = "v4",
    remat: str | None = None,
    assumed_mfu: float = 0.5,
    num_microbatches: int = 1,
    train_steps: int | None = None,
) -> Plan:
    """Everything `t5lab plan` prints, from shapes only."""
    chip = get_chip(chip_name)
    if isinstance(rules, str):
        rules_name, rules = rules, rule_set(rules, what="--rules")
    else:
        rules = tuple(rules)
        rules_name = rule_set_name(rules) or "from gin (train.partitioning)"
    remat = config.remat if remat is None else remat
    if remat not in REMAT_POLICIES:
        raise UserError(
            f"unknown remat policy {remat!r}; choose one of {', '.join(REMAT_POLICIES)}"
        )
    if not 0 < assumed_mfu <= 1:
        raise UserError(f"--mfu must be in (0, 1], got {assumed_mfu}")
    if config.vocab_size <= 0:
        raise UserError("T5Config.vocab_size is unset: bind it or name a task with a vocabulary")
    if num_microbatches < 1 or batch_size % num_microbatches:
        raise UserError(
            f"batch_size {batch_size} does not split into {num_microbatches} microbatches"
        )
    mesh = dict(mesh)
    warnings = []
    _, uneven_batch = shard_shape(
        shape=(batch_size,), logical_axes=("batch",), rules=rules, mesh=mesh
    )
    if uneven_batch:
        warnings.append(f"batch_size: {uneven_batch[0]} does not divide: `t5lab train` refuses it")
    used = {a for _, axes in rules for a in ((axes,) if isinstance(axes, str) else axes or ())}
    for axis, size in mesh.items():
        if size > 1 and axis not in used:
            warnings.append(f"rules {rules_name} shard nothing over {axis} ({size}): copies only")
    params = param_bytes(config=config, rules=rules, mesh=mesh)
    # Microbatching keeps the running sum next to the microbatch's own gradients.
    copies = 2 if num_microbatches > 1 else 1
    grads = ArrayBytes(params.total * copies, params.per_device * copies)
    tensors = activation_tensors(
        config=config,
        batch_size=batch_size // num_microbatches,
        inputs_length=inputs_length,
        targets_length=targets_length,
        remat=remat,
    )
    activations = _sum_bytes(
        [(t.shape, t.itemsize, t.axes, t.count) for t in tensors], rules=rules, mesh=mesh
    )
    opt = optimizer_bytes(config=config, optimizer=optimizer, rules=rules, mesh=mesh)
    for note in dict.fromkeys(params.uneven + opt.uneven + activations.uneven):
        warnings.append(f"{note} does not divide: `t5lab train` would refuse this sharding")
    if config.compute_dtype != jnp.bfloat16:
        warnings.append(
            f"T5Config.dtype is {config.dtype}: the bf16 peak assumes bfloat16 activations "
            "(set T5Config.dtype = 'bfloat16')"
        )
    plan = Plan(
        config=config,
        optimizer_name=optimizer_name,
        batch_size=batch_size,
        inputs_length=inputs_length,
        targets_length=targets_length,
        num_microbatches=num_microbatches,
        remat=remat,
        mesh=mesh,
        rules_name=rules_name,
        chip=chip,
        assumed_mfu=assumed_mfu,
        train_steps=train_steps,
        param_count=sum(math.prod(shape) for shape, _, _ in _param_table(config).values()),
        params=params,
        optimizer=opt,
        gradients=grads,
        activations=activations,
        flops=encoder_decoder_flops(
            config=config,
            batch_size=batch_size,
            inputs_length=inputs_length,
            targets_length=targets_length,
        ),
        warnings=tuple(warnings),
    )
    if not plan.fits:
        plan = dataclasses.replace(
            plan,
            warnings=plan.warnings
            + (
                f"{_gib(plan.bytes_per_device)} per device does not fit in {chip.hbm_label} "
                f"of {chip.name} HBM: shard more (--rules fsdp or fsdp_model_parallel, a "
                "larger mesh), set T5Config.remat, or raise train.num_microbatches",
            ),
        )
    return plan
