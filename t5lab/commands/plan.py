"""`t5lab plan`: will this run fit, and how long will a step take? Shapes only, no allocation.

    t5lab plan --gin_file=models/t5_1_1_xxl.gin --gin_file=runs/pretrain.gin \\
        --mesh=fsdp:4,model:4 --rules=fsdp_model_parallel --chip=v4

Reads the model, optimizer, batch size, feature lengths and microbatches from the `train.*`
gin bindings (as `t5lab train` would use them) and prints bytes per device, FLOPs per step
and a step-time estimate. A plan that does not fit still exits 0, with a WARNING line.
"""

from __future__ import annotations

import argparse
import inspect

from t5lab.errors import UserError

_MISSING = object()


def add_parser(commands, *, add_gin_flags) -> None:
    from t5lab.train.hardware import CHIPS  # no jax: `t5lab --help` stays fast
    from t5lab.train.rule_sets import RULE_SETS  # the trainer's (t5lab.train.partitioning)

    parser = commands.add_parser(
        "plan", help="memory per device, FLOPs and step time of a run, without running it"
    )
    add_gin_flags(parser)
    parser.add_argument(
        "--mesh",
        default=None,
        help="mesh axes and sizes, e.g. fsdp:4,model:4 (default: train.partitioning, or data:1)",
    )
    parser.add_argument(
        "--rules",
        default=None,
        help=f"how arrays shard, a rule set of the trainer: {', '.join(RULE_SETS)} "
        "(default: train.partitioning, or data_parallel)",
    )
    parser.add_argument("--chip", default="v4", help=f"accelerator: {', '.join(CHIPS)}")
    parser.add_argument("--batch_size", type=int, default=None, help="overrides train.batch_size")
    parser.add_argument(
        "--remat", default=None, help="override T5Config.remat: none, minimal, dots or full"
    )
    parser.add_argument(
        "--mfu", type=float, default=0.5, help="assumed model FLOPs utilisation (default 0.5)"
    )
    parser.set_defaults(handler=run)


def _evaluate(value):
    """A gin binding's value as the configurable would receive it (macros, @refs evaluated)."""
    import gin

    if isinstance(value, gin.config.ConfigurableReference):
        fn = value.scoped_configurable_fn
        try:
            return fn() if value.evaluate else fn
        except TypeError as error:
            raise UserError(f"gin: {str(error).strip().splitlines()[0]}") from None
    if isinstance(value, dict):
        return {key: _evaluate(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_evaluate(item) for item in value)
    return value


def _train_binding(name: str, default=_MISSING):
    import gin

    try:
        value = gin.query_parameter(f"train.{name}")
    except ValueError:
        if default is _MISSING:
            raise UserError(
                f"no value for train.{name}: include a run gin file (e.g. runs/pretrain.gin)"
            ) from None
        return default
    return _evaluate(value)


def _layout(mesh: dict[str, int] | None, rules: str | None) -> tuple[dict, object, list[str]]:
    """Mesh and rules: the flags, else the run's own train.partitioning, else 1 device and
    data_parallel."""
    notes = []
    partitioning = _train_binding("partitioning", None)
    if partitioning is not None:
        rules = rules or tuple(partitioning.rules)
        if mesh is None:
            sizes = dict(partitioning.mesh_shape)
            for axis in [axis for axis, size in sizes.items() if size == -1]:
                sizes[axis] = 1
                notes.append(
                    f"train.partitioning sizes {axis} by the devices there: planned "
                    f"for 1; pass --mesh={axis}:N"
                )
            mesh = {axis: size for axis, size in sizes.items() if size != 1}
    return mesh or {"data": 1}, rules or "data_parallel", notes


def _optimizer_name() -> str:
    import gin

    reference = gin.query_parameter("train.optimizer")
    if isinstance(reference, gin.config.ConfigurableReference):
        return reference.configurable.name
    return type(reference).__name__


def _unit(size: float) -> tuple[str, int]:
    """The binary unit that shows `size` with a few significant digits."""
    for name, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return name, scale
    return "KiB", 2**10


def _duration(seconds: float) -> str:
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60), ("s", 1)):
        if seconds >= 2 * length or unit == "s" and seconds >= 0.1:
            return f"{seconds / length:,.1f} {unit}"
    return f"{seconds * 1e3:,.2g} ms"


def format_plan(plan) -> str:
    cfg, chip = plan.config, plan.chip
    tokens = plan.batch_size * (plan.inputs_length + plan.targets_length)
    mesh = " x ".join(f"{axis}:{size}" for axis, size in plan.mesh.items())
    hosts = -(-plan.devices // chip.chips_per_host)
    lines = [
        f"model        {plan.param_count:,} parameters ({cfg.num_encoder_layers}+"
        f"{cfg.num_decoder_layers} layers, d_model {cfg.emb_dim}, vocab {cfg.vocab_size}), "
        f"{cfg.dtype} compute, remat {plan.remat}",
        f"batch        {plan.batch_size} x ({plan.inputs_length} inputs + "
        f"{plan.targets_length} targets) = {tokens:,} tokens, "
        f"{plan.num_microbatches} microbatch{'es' if plan.num_microbatches > 1 else ''}",
        f"mesh         {mesh} = {plan.devices} devices, rules {plan.rules_name}",
        f"chip         {chip.name}: {chip.peak_bf16_flops / 1e12:,.0f} TFLOP/s bf16 dense, "
        f"{chip.hbm_label} HBM ({chip.source})",
        f"             {plan.devices} chips = {chip.slice_name(plan.devices)}, "
        f"{hosts} host{'s' if hosts > 1 else ''}",
        "",
    ]
    unit, scale = _unit(max(plan.params.total, plan.activations.total))
    lines.append(f"memory{unit + ' per device':>34}{unit + ' unsharded':>16}")
    rows = (
        ("params (float32)", plan.params),
        (f"optimizer ({plan.optimizer_name})", plan.optimizer),
        ("gradients (float32)", plan.gradients),
        (f"activations (remat {plan.remat})", plan.activations),
    )
    for label, part in rows:
        lines.append(f"  {label:<26}{part.per_device / scale:>14,.2f}{part.total / scale:>16,.2f}")
    share = plan.bytes_per_device / chip.hbm_bytes
    lines.append(
        f"  {'total':<26}{plan.bytes_per_device / scale:>14,.2f}   {share:.0%} of {chip.hbm_label}"
    )
    flops = plan.flops
    recompute = {"full": flops["total"] / 3, "minimal": flops["attention"] / 3}.get(plan.remat, 0)
    step = plan.step_seconds
    lines += [
        "",
        f"FLOPs/step   {flops['total']:.3g} (dense {flops['dense']:.3g}, attention "
        f"{flops['attention']:.3g})"
        + (f"; remat {plan.remat} recomputes ~{recompute:.2g} more" if recompute else ""),
        f"step time    {_duration(step)} at {plan.assumed_mfu:.0%} MFU (assumed, --mfu); "
        f"{_duration(step * plan.assumed_mfu)} at the bf16 peak",
        f"throughput   {tokens / step:,.0f} tokens/s"
        + (
            f"; {plan.train_steps:,} steps take {_duration(step * plan.train_steps)}"
            if plan.train_steps
            else ""
        ),
    ]
    lines += [f"WARNING: {warning}" for warning in plan.warnings]
    return "\n".join(lines)


def run(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab.cli import parse_gin
    from t5lab.models import T5Config
    from t5lab.train import hardware, partitioning, trainer
    from t5lab.train import plan as planning
    from t5lab.train.activations import REMAT_POLICIES

    mesh = hardware.parse_mesh(args.mesh) if args.mesh else None  # flag mistakes first
    if args.rules:
        partitioning.rule_set(args.rules, what="--rules")
    hardware.get_chip(args.chip)
    if args.remat is not None and args.remat not in REMAT_POLICIES:
        choices = ", ".join(REMAT_POLICIES)
        raise UserError(f"unknown --remat {args.remat!r}; choose one of {choices}")
    parse_gin(args, bindings)
    defaults = inspect.signature(trainer.train).parameters
    config = _train_binding("model_config")
    if not isinstance(config, T5Config):
        raise UserError(f"t5lab plan covers T5 encoder-decoders, not {type(config).__name__}")
    if not config.vocab_size:
        task = _train_binding("mixture_or_task_name")
        config = trainer.config_for_task(config, mixture_or_task_name=task)
    mesh, rules, notes = _layout(mesh, args.rules)
    lengths = _train_binding("task_feature_lengths")
    batch_size = args.batch_size or _train_binding("batch_size", defaults["batch_size"].default)
    plan = planning.plan_training(
        config=config,
        optimizer=_train_binding("optimizer"),
        optimizer_name=_optimizer_name(),
        batch_size=batch_size,
        inputs_length=lengths["inputs"],
        targets_length=lengths["targets"],
        mesh=mesh,
        rules=rules,
        chip_name=args.chip,
        remat=args.remat,
        assumed_mfu=args.mfu,
        num_microbatches=_train_binding("num_microbatches", defaults["num_microbatches"].default),
        train_steps=_train_binding("train_steps", None),
    )
    print(format_plan(plan))
    for note in notes:
        print(f"WARNING: {note}")
    return 0
