"""The named logical-axis rule sets: one table for `t5lab train` and `t5lab plan`.

A rule maps a logical axis name (of a parameter or an activation) onto mesh axes. Kept free
of jax imports so `t5lab --help` can list the names cheaply; `t5lab.train.partitioning`
re-exports everything here and is where the rules are applied.
"""

from __future__ import annotations

from t5lab.errors import UserError, did_you_mean

# Outermost first: consecutive devices (and each host's devices) end up along `model`,
# and hosts split the batch along `data`.
MESH_AXES = ("data", "fsdp", "model")
LOGICAL_AXES = (
    "batch",
    "length",
    "vocab",
    "embed",
    "mlp",
    "heads",
    "kv",
    "relpos_buckets",
    "layers",
)

MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]


def _complete(*rules: tuple[str, MeshAxes]) -> Rules:
    """The given rules, then every other logical axis unsharded (`layers` from scanned stacks)."""
    named = {name for name, _ in rules}
    return tuple(rules) + tuple((name, None) for name in LOGICAL_AXES if name not in named)


_MEGATRON = (("vocab", "model"), ("mlp", "model"), ("heads", "model"))

# `batch` comes first: an activation [batch, length, embed] under FSDP takes `fsdp` for its
# batch, so `embed` (sharded over `fsdp` in parameters) stays whole in activations.
RULE_SETS: dict[str, Rules] = {
    "data_parallel": _complete(("batch", "data")),
    "fsdp": _complete(("batch", ("data", "fsdp")), ("embed", "fsdp")),
    "model_parallel": _complete(("batch", "data"), *_MEGATRON),
    # FSDP over `fsdp` and Megatron-style model parallelism over `model` at once: a weight
    # [embed, mlp] is split both ways (what T5X runs XXL with).
    "fsdp_model_parallel": _complete(("batch", ("data", "fsdp")), *_MEGATRON, ("embed", "fsdp")),
}


def rule_set(name: str, *, what: str = "logical_axis_rules") -> Rules:
    """The rules of a named set; `what` names the setting in the error for an unknown one."""
    if name not in RULE_SETS:
        raise UserError(
            f"unknown {what} {name!r}{did_you_mean(name, RULE_SETS)}; known: {', '.join(RULE_SETS)}"
        )
    return RULE_SETS[name]


def rule_set_name(rules: Rules) -> str | None:
    """The name of the set these rules are, if any."""
    return next((name for name, known in RULE_SETS.items() if known == tuple(rules)), None)
