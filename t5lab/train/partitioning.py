"""Sharding through JAX SPMD: a device mesh, logical axis rules, and the shardings they give.

Parameters carry logical axis names (`vocab`, `embed`, `mlp`, `heads`, `kv`, ...); a rule
table maps each name onto mesh axes (`data`, `fsdp`, `model`), and `jax.jit` with in/out
shardings does the rest. Changing the parallelism strategy is changing the mesh shape and
the rule set, nothing else. The spec functions are pure (no devices needed), so memory
estimates can reuse them; only `make_mesh`, `named_shardings` and the array helpers touch
devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from t5lab.errors import UserError, did_you_mean

# The named rule sets (RULE_SETS), shared with `t5lab plan`, are defined in a jax-free module
# so `t5lab --help` can list them; use them from here.
from t5lab.train.rule_sets import (  # noqa: F401
    MESH_AXES,
    RULE_SETS,
    MeshAxes,
    Rules,
    rule_set,
    rule_set_name,
)


@dataclasses.dataclass(frozen=True)
class Partitioning:
    """A mesh shape (sizes per mesh axis, -1 = the remaining devices) and logical axis rules."""

    mesh_shape: tuple[tuple[str, int], ...]
    rules: Rules


def _normalise_rules(rules: str | Sequence) -> Rules:
    if isinstance(rules, str):
        return rule_set(rules)
    normalised = []
    for rule in rules:
        if len(rule) != 2 or not isinstance(rule[0], str):
            raise UserError(f"a logical axis rule is (logical_name, mesh_axes), got {rule!r}")
        name, axes = rule
        axes = tuple(axes) if isinstance(axes, list | tuple) else axes
        for axis in (axes,) if isinstance(axes, str) else axes or ():
            if axis not in MESH_AXES:
                raise UserError(
                    f"rule {name!r} -> {axis!r} names an unknown mesh axis"
                    f"{did_you_mean(axis, MESH_AXES)}; mesh axes are {', '.join(MESH_AXES)}"
                )
        normalised.append((name, axes))
    return tuple(normalised)


def partitioning(
    *,
    mesh_shape: Mapping[str, int] | Sequence[tuple[str, int]] | None = None,
    logical_axis_rules: str | Sequence = "data_parallel",
) -> Partitioning:
    """Check and normalise a strategy; no mesh_shape = data parallel over every device.

    `logical_axis_rules` is a rule set name (see RULE_SETS) or (logical_name, mesh_axes)
    pairs, earlier rules winning when two logical axes of one array want the same mesh axis.
    """
    mesh_shape = mesh_shape or {"data": -1}
    pairs = list(mesh_shape.items() if isinstance(mesh_shape, Mapping) else mesh_shape)
    sizes: dict[str, int] = {}
    for name, size in pairs:
        if name not in MESH_AXES:
            raise UserError(
                f"unknown mesh axis {name!r}{did_you_mean(name, MESH_AXES)}; "
                f"mesh axes are {', '.join(MESH_AXES)}"
            )
        if not isinstance(size, int) or (size < 1 and size != -1):
            raise UserError(f"mesh axis {name!r} needs a size >= 1 (or -1 = the rest), got {size}")
        sizes[name] = size
    if list(sizes.values()).count(-1) > 1:
        raise UserError(f"at most one mesh axis may be -1, got {sizes}")
    shape = tuple((axis, sizes.get(axis, 1)) for axis in MESH_AXES)
    return Partitioning(mesh_shape=shape, rules=_normalise_rules(logical_axis_rules))


def resolve_mesh_shape(
    *, mesh_shape: Sequence[tuple[str, int]], num_devices: int, allow_fewer: bool = True
) -> dict[str, int]:
    """Fill in a -1 and check the mesh fits the devices (fewer is fine on one process)."""
    sizes = dict(mesh_shape)
    fixed = math.prod(size for size in sizes.values() if size != -1)
    for axis, size in sizes.items():
        if size == -1:
            if num_devices % fixed:
                raise UserError(
                    f"mesh {sizes}: {num_devices} devices do not split into {fixed} x N"
                )
            sizes[axis] = num_devices // fixed
    total = math.prod(sizes.values())
    if total > num_devices:
        raise UserError(
            f"mesh {_describe(sizes)} needs {total} devices but only {num_devices} are available"
        )
    if total < num_devices and not allow_fewer:
        raise UserError(
            f"mesh {_describe(sizes)} uses {total} of {num_devices} devices: with several "
            "processes it must use them all (use -1 for one axis)"
        )
    return sizes


def _describe(sizes: Mapping[str, int]) -> str:
    return "x".join(f"{axis}={size}" for axis, size in sizes.items() if size != 1) or "1 device"


def make_mesh(*, layout: Partitioning, devices: Sequence[Any] | None = None) -> Mesh:
    """The device mesh (auto-sharded axes, so jit and GSPMD place every intermediate)."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = resolve_mesh_shape(
        mesh_shape=layout.mesh_shape,
        num_devices=len(devices),
        allow_fewer=jax.process_count() == 1,
    )
    return jax.make_mesh(
        tuple(sizes.values()),
        tuple(sizes),
        axis_types=(AxisType.Auto,) * len(sizes),
        devices=devices,
    )


def mesh_spec(
    *,
    logical_axes: Sequence[str | None],
    shape: Sequence[int],
    sizes: Mapping[str, int],
    rules: Rules,
    name: str = "array",
) -> P:
    """A mesh PartitionSpec for one array; a sharded dim must divide by its mesh axes."""
    spec = nn.logical_to_mesh_axes(tuple(logical_axes), rules)
    for dim, (logical, axes) in enumerate(zip(logical_axes, spec, strict=True)):
        parts = math.prod(sizes[a] for a in ((axes,) if isinstance(axes, str) else axes or ()))
        if shape[dim] % parts:
            raise UserError(
                f"{name}: dimension {logical!r} of size {shape[dim]} does not split over mesh "
                f"axes {axes!r} ({parts} devices): pick a mesh that divides it or map "
                f"{logical!r} to None"
            )
    return spec


def param_partition_specs(
    *, abstract_variables: Any, mesh_sizes: Mapping[str, int], rules: Rules
) -> Any:
    """Mesh PartitionSpecs for boxed (logically partitioned) parameters, shapes only."""
    logical = nn.get_partition_spec(abstract_variables)
    shapes = nn.unbox(abstract_variables)

    def one(path, spec, leaf):
        names = tuple(spec or ())
        return mesh_spec(
            logical_axes=names + (None,) * (len(leaf.shape) - len(names)),
            shape=leaf.shape,
            sizes=mesh_sizes,
            rules=rules,
            name=jax.tree_util.keystr(path, simple=True, separator="/"),
        )

    return jax.tree_util.tree_map_with_path(
        one, logical, shapes, is_leaf=lambda x: isinstance(x, P) or x is None
    )


def _derived_spec(leaf_shape: tuple, param_shape: tuple, spec: P) -> P:
    """The spec of an optimizer-state leaf built from a parameter (same, reduced or kept dims)."""
    axes = tuple(spec) + (None,) * (len(param_shape) - len(spec))
    if leaf_shape == param_shape:
        return P(*axes)
    if len(leaf_shape) == len(param_shape) - 1:  # Adafactor's factored rows / columns
        for dim in reversed(range(len(param_shape))):
            if param_shape[:dim] + param_shape[dim + 1 :] == leaf_shape:
                return P(*(axes[:dim] + axes[dim + 1 :]))
    if len(leaf_shape) == len(param_shape) and all(
        a in (1, b) for a, b in zip(leaf_shape, param_shape, strict=True)
    ):  # reductions with keepdims
        kept = zip(axes, leaf_shape, param_shape, strict=True)
        return P(*(ax if a == b else None for ax, a, b in kept))
    return P()


def _path_key(path) -> tuple[str, ...]:
    return tuple(str(entry) for entry in path)


def state_partition_specs(*, abstract_state: Any, abstract_params: Any, param_specs: Any) -> Any:
    """Specs for a whole train state: every leaf whose path ends with a parameter's path
    (params, Adam moments, Adafactor factors) follows that parameter; the rest is replicated."""
    known = {}
    flat_params = jax.tree_util.tree_flatten_with_path(abstract_params)[0]
    flat_specs = jax.tree.leaves(param_specs, is_leaf=lambda x: isinstance(x, P))
    for (path, leaf), spec in zip(flat_params, flat_specs, strict=True):
        known[_path_key(path)] = (tuple(leaf.shape), spec)

    def one(path, leaf):
        key = _path_key(path)
        for start in range(len(key)):
            if key[start:] in known:
                return _derived_spec(tuple(leaf.shape), *known[key[start:]])
        return P()

    return jax.tree_util.tree_map_with_path(one, abstract_state)


def per_device_bytes(*, abstract_tree: Any, specs: Any, mesh_sizes: Mapping[str, int]) -> int:
    """Bytes one device holds of a tree sharded by `specs` (shapes only, no devices)."""
    total = 0
    leaves = jax.tree.leaves(abstract_tree)
    spec_leaves = jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P))
    for leaf, spec in zip(leaves, spec_leaves, strict=True):
        shard = list(leaf.shape)
        for dim, axes in enumerate(spec):
            for axis in (axes,) if isinstance(axes, str) else axes or ():
                shard[dim] = -(-shard[dim] // mesh_sizes[axis])
        total += math.prod(shard) * np.dtype(leaf.dtype).itemsize
    return total


def batch_spec(*, rules: Rules) -> P:
    """How the leading (batch) dimension of every input array is split."""
    return P(nn.logical_to_mesh_axes(("batch",), rules)[0])


def data_parallel_size(*, mesh_sizes: Mapping[str, int], rules: Rules) -> int:
    """How many devices split the batch (1 when the rules leave `batch` whole)."""
    axes = batch_spec(rules=rules)[0]
    return math.prod(mesh_sizes[a] for a in ((axes,) if isinstance(axes, str) else axes or ()))


def check_batch_split(*, batch_size: int, num_microbatches: int, data_parallel: int) -> None:
    """The global batch, and each microbatch, must split evenly over the batch's devices."""
    if batch_size % num_microbatches:
        raise UserError(
            f"batch_size {batch_size} is not divisible by num_microbatches {num_microbatches}"
        )
    if batch_size % data_parallel:
        raise UserError(
            f"batch_size {batch_size} is not divisible by the data-parallel size {data_parallel} "
            "(mesh axes the rules give `batch`): change BATCH_SIZE or the mesh"
        )
    if (batch_size // num_microbatches) % data_parallel:
        raise UserError(
            f"microbatches of {batch_size // num_microbatches} examples do not split over the "
            f"data-parallel size {data_parallel}: lower num_microbatches"
        )


def named_shardings(*, mesh: Mesh, specs: Any) -> Any:
    return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, P))


def with_shardings(abstract: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs that carry shardings: a restore target, or an AOT compile input."""
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )


def put_replicated_host_value(value: Any, *, mesh: Mesh) -> Any:
    """A host value every process holds in full (a seed key) as a replicated global array."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), value
    )


def put_host_tree(tree: Any, *, shardings: Any) -> Any:
    """Full host arrays (the same on every process) -> global arrays with the given shardings."""
    return jax.tree.map(
        lambda x, s: jax.make_array_from_callback(np.shape(x), s, lambda idx: np.asarray(x)[idx]),
        tree,
        shardings,
    )


@contextlib.contextmanager
def activate(*, mesh: Mesh, rules: Rules) -> Iterator[None]:
    """Mesh and rules in context while tracing, so the model's activation constraints apply."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield


@dataclasses.dataclass(frozen=True)
class StepShardings:
    """What the jitted steps take and give: state, params, batch and replicated values."""

    state: Any
    params: Any
    batch: NamedSharding
    replicated: NamedSharding


def jit_train_step(step, shardings: StepShardings | None):
    """(state, batch, rng) -> (state, metrics), donating the old state; sharded if given."""
    if shardings is None:
        return jax.jit(step, donate_argnums=(0,))
    s = shardings
    return jax.jit(
        step,
        in_shardings=(s.state, s.batch, s.replicated),
        out_shardings=(s.state, s.replicated),
        donate_argnums=(0,),
    )


def jit_eval_step(evaluate, shardings: StepShardings | None):
    """(params, batch) -> summed loss terms (replicated); sharded if given."""
    if shardings is None:
        return jax.jit(evaluate)
    s = shardings
    return jax.jit(evaluate, in_shardings=(s.params, s.batch), out_shardings=s.replicated)


def step_shardings(
    *, mesh: Mesh, rules: Rules, abstract_variables: Any, abstract_state: Any
) -> StepShardings:
    """Shardings of the train state (params and optimizer state alike) and of batches."""
    sizes = dict(mesh.shape)
    params = param_partition_specs(
        abstract_variables=abstract_variables["params"], mesh_sizes=sizes, rules=rules
    )
    state = state_partition_specs(
        abstract_state=abstract_state,
        abstract_params=abstract_state.params,
        param_specs=params,
    )
    return StepShardings(
        state=named_shardings(mesh=mesh, specs=state),
        params=named_shardings(mesh=mesh, specs=params),
        batch=NamedSharding(mesh, batch_spec(rules=rules)),
        replicated=NamedSharding(mesh, P()),
    )
