"""Subcommands beyond train/eval/infer: one module each, discovered by `t5lab.cli`.

A module here defines `add_parser(commands, *, add_gin_flags)` (adds its argparse subparser
and `set_defaults(handler=run)`) and `run(args, bindings) -> int`; `t5lab.cli.parse_gin`
applies the gin flags. Keep imports of heavy libraries inside `run`.
"""
