"""`t5lab mixture`: what a mixture feeds the model over a run, before spending the run on it.

    t5lab mixture offline_sotu_proportional_k2_19 --train_steps 2000 --batch_size 128
    t5lab mixture --gin_file=runs/pretrain.gin --gin_file=mixtures/equal.gin \
        --gin.define_mixture.name=mine --gin.define_mixture.tasks="['a', 'b']"

Prints each task's train examples, rate, batch share, examples seen in the run and how many
epochs of the task that is; a task seen more than once is flagged (it repeats: over-fitting).
"""

import argparse

from t5lab.errors import UserError


def add_parser(commands, *, add_gin_flags) -> None:
    parser = commands.add_parser(
        "mixture", help="per-task rates, batch shares and epochs of a mixture over a run"
    )
    parser.add_argument(
        "name", nargs="?", default=None, help="a registered mixture (or define one with gin flags)"
    )
    add_gin_flags(parser)
    parser.add_argument("--train_steps", type=int, default=None, help="default: gin TRAIN_STEPS")
    parser.add_argument("--batch_size", type=int, default=None, help="default: gin BATCH_SIZE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, bindings: list[str]) -> int:
    import tasks  # noqa: F401  (registers the named tasks and mixtures)
    from t5lab.data import mixing

    uses_gin = bool(args.gin_file or args.gin_bindings or bindings)
    if uses_gin:
        from t5lab.cli import parse_gin

        parse_gin(args, bindings)
    name = args.name or (_mixture_from_gin() if uses_gin else None)
    if not name:
        raise UserError("name a mixture, or define one with --gin_file / --gin.define_mixture.*")
    train_steps = _from_flag_or_macro(args.train_steps, "TRAIN_STEPS", "--train_steps", uses_gin)
    batch_size = _from_flag_or_macro(args.batch_size, "BATCH_SIZE", "--batch_size", uses_gin)
    shares = mixing.task_shares(mixture_name=name, train_steps=train_steps, batch_size=batch_size)
    print(format_shares(name=name, shares=shares, train_steps=train_steps, batch_size=batch_size))
    return 0


def _mixture_from_gin() -> str:
    """The mixture gin defines: `define_mixture` if bound, else MIXTURE_OR_TASK_NAME."""
    import gin

    from t5lab import gin_setup

    if _is_bound("define_mixture.tasks"):
        return gin_setup.call("define_mixture")
    if _is_bound("define_mixture.rate"):
        raise UserError("the gin flags bind define_mixture.rate but not define_mixture.tasks")
    try:
        value = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
    except ValueError:
        raise UserError("the gin flags define no mixture: bind define_mixture.tasks") from None
    if isinstance(value, gin.config.ConfigurableReference):
        value = gin_setup.call(value.configurable.name)
    return value


def _is_bound(parameter: str) -> bool:
    import gin

    try:
        gin.query_parameter(parameter)
        return True
    except ValueError:
        return False


def _from_flag_or_macro(value: int | None, macro: str, flag: str, uses_gin: bool) -> int:
    if value is None and uses_gin:
        import gin

        try:
            value = gin.query_parameter(f"%{macro}")
        except ValueError:
            value = None
    if not isinstance(value, int):
        raise UserError(f"give {flag} (or a gin file that sets {macro})")
    return value


def format_shares(*, name: str, shares: list, train_steps: int, batch_size: int) -> str:
    """A plain-text table; tasks past one epoch are marked with '!'."""
    header = ("task", "train examples", "rate", "share", "examples seen", "epochs")
    rows = []
    for share in shares:
        count = "?" if share.train_examples is None else f"{share.train_examples:,}"
        epochs = "?" if share.epochs is None else f"{share.epochs:,.2f}"
        flag = " !" if share.epochs is not None and share.epochs > 1 else ""
        rows.append(
            (
                share.task,
                count,
                f"{share.rate:,.6g}",
                f"{share.share:.2%}",
                f"{share.examples_seen:,.0f}",
                epochs + flag,
            )
        )
    rows.append(
        (
            "total",
            "",
            "",
            f"{sum(s.share for s in shares):.2%}",
            f"{train_steps * batch_size:,}",
            "",
        )
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"mixture {name}: {train_steps:,} steps x batch {batch_size:,}"]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.append(
        "train examples: the task's declared count (seqio: cached stats, else "
        "num_input_examples('train')); rate and share follow from it."
    )
    lines.append(
        "examples seen = share x steps x batch size, unpacked (one example per row; packing puts "
        "several in a row, so a packed run sees more)."
    )
    if any(s.epochs is not None and s.epochs > 1 for s in shares):
        lines.append("! = more than one epoch: the task's train split repeats (over-fitting risk).")
    if any(s.train_examples is None for s in shares):
        lines.append("? = the task declares no number of train examples.")
    return "\n".join(lines)
