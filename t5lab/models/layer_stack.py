"""Layer stacks: rematerialisation policies, `nn.scan` over layers, and param (un)stacking.

Why scan: an unrolled stack traces and compiles every layer separately, so compile time grows
with depth; a scanned stack compiles one layer and loops (t5x's scalable T5 reports ~5x faster
compiles at base size). Scanned params carry a leading `layers` axis (a logical axis name, so
a mesh rule can map it; unmapped it stays replicated) under `<stack>/layers/...` instead of
`<stack>/layers_<i>/...`. `stack_layer_params` / `unstack_layer_params` convert between the two
layouts, so checkpoints and exports move freely between `scan_layers=True` and `False`.

Why remat: activations saved for the backward pass dominate memory in deep stacks.
`remat` trades them for recomputation per layer:
  none     save everything (fastest, most memory)
  minimal  save only matmul outputs without batch dims (projections, MLP), recompute the rest
  dots     save every matmul output, attention scores included
  full     save nothing but the layer inputs (least memory, one extra forward pass)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

REMAT_POLICIES = {
    "none": None,
    "minimal": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "full": jax.checkpoint_policies.nothing_saveable,
}
SCAN_AXIS = "layers"
_UNROLLED = re.compile(r"layers_(\d+)$")


def _scan_step(cls: type[nn.Module]) -> type[nn.Module]:
    """`cls` returning (carry, None), the signature `nn.scan` wants; same params and names."""

    class ScanStep(cls):  # type: ignore[misc, valid-type]
        def __call__(self, x: jax.Array, *args: Any) -> tuple[jax.Array, None]:
            return cls.__call__(self, x, *args), None

    ScanStep.__name__ = ScanStep.__qualname__ = cls.__name__
    return ScanStep


def layer_class(
    cls: type[nn.Module], *, remat: str, scan_length: int = 0, broadcast_args: int = 0
) -> type[nn.Module]:
    """The layer class to instantiate: rematerialised per `remat` and, with `scan_length` > 0,
    scanned that many times over its first argument (the `broadcast_args` after it are shared
    by every layer). A scanned instance returns (output, None)."""
    if remat not in REMAT_POLICIES:
        raise ValueError(f"remat must be one of {tuple(REMAT_POLICIES)}, got {remat!r}")
    if scan_length > 0:
        cls = _scan_step(cls)
    if remat != "none":
        # Inside a scan the loop already keeps XLA from merging recomputation away.
        cls = nn.remat(cls, policy=REMAT_POLICIES[remat], prevent_cse=scan_length == 0)
    if scan_length == 0:
        return cls
    return nn.scan(
        cls,
        variable_axes={"params": 0, "cache": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast,) * broadcast_args,
        length=scan_length,
        metadata_params={nn.PARTITION_NAME: SCAN_AXIS},
    )


def _stack(leaves: tuple[Any, ...]) -> Any:
    xp = np if all(isinstance(x, np.ndarray) for x in leaves) else jnp
    return xp.stack(leaves)


def stack_layer_params(*, params: Mapping[str, Any]) -> dict[str, Any]:
    """Unrolled params (`layers_0..layers_<n-1>` per stack) -> scanned (`layers`, stacked on
    axis 0). Takes plain (unboxed) nested dicts; anything else is copied through."""
    out: dict[str, Any] = {}
    indexed = {}
    for key, value in params.items():
        match = _UNROLLED.match(key) if isinstance(value, Mapping) else None
        if match:
            indexed[int(match.group(1))] = value
        elif isinstance(value, Mapping):
            out[key] = stack_layer_params(params=value)
        else:
            out[key] = value
    if indexed:
        if sorted(indexed) != list(range(len(indexed))):
            raise ValueError(f"layer indices are not 0..n-1: {sorted(indexed)}")
        if SCAN_AXIS in out:
            raise ValueError("params hold both 'layers' and 'layers_<i>' entries")
        layers = [indexed[i] for i in range(len(indexed))]
        out[SCAN_AXIS] = jax.tree.map(lambda *xs: _stack(xs), *layers)
    return out


def unstack_layer_params(*, params: Mapping[str, Any]) -> dict[str, Any]:
    """Scanned params (`layers` with a leading layer axis) -> unrolled `layers_<i>`."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == SCAN_AXIS and isinstance(value, Mapping):
            leaves = jax.tree.leaves(value)
            count = leaves[0].shape[0]
            for i in range(count):
                out[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], value)
        elif isinstance(value, Mapping):
            out[key] = unstack_layer_params(params=value)
        else:
            out[key] = value
    return out


def has_scanned_layers(params: Mapping[str, Any]) -> bool:
    """Whether any stack in `params` is in the scanned layout."""
    return any(
        key == SCAN_AXIS or (isinstance(value, Mapping) and has_scanned_layers(value))
        for key, value in params.items()
        if isinstance(value, Mapping)
    )
