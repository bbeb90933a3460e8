"""`t5lab sweep --gin_file=gin/sweeps/<name>.gin [--launch_commands]`: a scaling sweep."""

import argparse
import signal


def add_parser(commands, *, add_gin_flags) -> None:
    parser = commands.add_parser(
        "sweep",
        help="scaling sweep: model size x steps x batch x ensembles, table and L(N, D) fit",
    )
    add_gin_flags(parser)
    parser.add_argument(
        "--launch_commands",
        action="store_true",
        help="print one `t5lab train` command per run (e.g. for a pod) instead of running",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, bindings: list[str]) -> int:
    from t5lab import gin_setup
    from t5lab.cli import parse_gin

    parse_gin(args, bindings)
    plan = gin_setup.call("sweep")
    if args.launch_commands:
        from t5lab.experiments.sweep import launch_commands

        print(f"# sweep {plan.name}: {len(plan.runs)} runs in order (a fine-tune after its start)")
        for line in launch_commands(plan):
            print(line)
        files = " ".join(f"--gin_file={f}" for f in args.gin_file)
        print(f"# then collect the table and fit (nothing is retrained): t5lab sweep {files}")
        return 0
    from t5lab.experiments.runner import ExperimentInterrupted
    from t5lab.experiments.sweep_results import run_sweep

    try:
        summary = run_sweep(plan=plan, show_progress=not args.quiet)
    except ExperimentInterrupted as stop:
        print(f"{stop.signal_name}: stopped; run the same command again to resume")
        return 128 + int(getattr(signal, stop.signal_name))
    with open(f"{plan.exp_dir}/results.md") as handle:
        print(handle.read())
    fit = summary["fit"]
    print(f"fit: {fit['formula']}" if fit else f"no fit: {summary['fit_note']}")
    print(f"wrote results.md, results.json, sweep.json and scaling.png in {plan.exp_dir}")
    return 0
