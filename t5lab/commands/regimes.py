"""`t5lab regimes --gin_file=gin/regimes/<size>.gin`: T5's table 14 on one model and budget."""

import argparse

from t5lab.experiments.command import add_lab_flags, run_lab_command


def add_parser(commands, *, add_gin_flags) -> None:
    parser = commands.add_parser(
        "regimes",
        help="pretrain+fine-tune vs multitask vs leave-one-out ... (T5 table 14), with a report",
    )
    add_lab_flags(parser, add_gin_flags)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab.experiments.regimes import regime_variants

    return run_lab_command(
        args,
        bindings,
        title="Training regimes (T5 table 14)",
        variants_of=lambda settings: regime_variants(settings=settings),
    )
