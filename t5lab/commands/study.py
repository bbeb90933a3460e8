"""`t5lab study objectives|corruption-rate|span-length|mixing --gin_file=gin/studies/<size>.gin`."""

import argparse

from t5lab.experiments.command import add_lab_flags, run_lab_command

TITLES = {
    "objectives": "Pretraining objectives (T5 tables 4-5, BERT's NSP, BART)",
    "corruption-rate": "Corruption rate (T5 table 6)",
    "span-length": "Corrupted span length (T5 table 7)",
    "mixing": "Mixing strategies, multitask training (T5 table 11)",
}


def add_parser(commands, *, add_gin_flags) -> None:
    parser = commands.add_parser(
        "study", help="compare pretraining objectives, corruption rates, span lengths, mixing"
    )
    parser.add_argument("study", choices=sorted(TITLES), help="which comparison")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="replace the default variant list: an objectives/ or mixtures/ gin name (repeatable)",
    )
    add_lab_flags(parser, add_gin_flags)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab.experiments.studies import study_variants

    return run_lab_command(
        args,
        bindings,
        title=TITLES[args.study],
        variants_of=lambda settings: study_variants(
            study=args.study, settings=settings, variants=args.variant
        ),
        exp_suffix=args.study,
    )
