"""What `t5lab regimes` and `t5lab study` share: read the settings, run, print the table."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
from collections.abc import Callable


def run_lab_command(
    args: argparse.Namespace,
    bindings: list[str],
    *,
    title: str,
    variants_of: Callable,
    exp_suffix: str = "",
) -> int:
    from t5lab import gin_setup
    from t5lab.cli import parse_gin
    from t5lab.experiments.lab import run_lab
    from t5lab.experiments.runner import ExperimentInterrupted

    parse_gin(args, bindings)
    settings = gin_setup.call("LabSettings")
    if exp_suffix:
        settings = dataclasses.replace(settings, exp_dir=os.path.join(settings.exp_dir, exp_suffix))
    variants = variants_of(settings)
    if args.dry_run:
        from t5lab.experiments.lab import plan_runs
        from t5lab.experiments.runner import describe_runs

        runs, _ = plan_runs(settings=settings, variants=variants)
        print(describe_runs(exp_dir=settings.exp_dir, runs=runs))
        return 0
    _share_compiled_steps(os.path.join(settings.exp_dir, "xla_cache"))
    try:
        report, seconds = run_lab(
            settings=settings, variants=variants, title=title, show_progress=not args.quiet
        )
    except ExperimentInterrupted as stop:
        print(f"{stop.signal_name}: stopped; run the same command again to resume")
        return 128 + int(getattr(signal, stop.signal_name))
    with open(report.markdown_path) as handle:
        print(handle.read())
    print(f"wrote {report.json_path}, {report.markdown_path} and {report.chart_path}")
    print(f"{len(report.variants)} variants; the runs took {seconds / 60:.1f} min of wall time")
    return 0


def _share_compiled_steps(directory: str) -> None:
    """Runs of one experiment compile the same steps: keep XLA executables on disk for the
    next run (and the next invocation) unless the user chose a cache already."""
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def add_lab_flags(parser: argparse.ArgumentParser, add_gin_flags: Callable) -> None:
    add_gin_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="list the runs, their steps and which are finished; train nothing",
    )
