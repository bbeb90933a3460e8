"""Run an expanded sweep, score its rows, fit L(N, D) and write the report.

Scores: every row is scored by `ensemble_validation` (logit-averaged members, z-loss left
out, the same validation batches for every row of a task). The fit uses every pretraining
run on its own: N = its parameter count (embeddings included), D = steps x batch x
(inputs + targets length), L = its validation loss on its pretraining task.

Writes into EXP_DIR: results.md / results.json / results.png (the rows, via report.py),
then appends the run shapes and the fit to results.md; sweep.json (everything, machine
readable); scaling.png (log-log loss vs parameters and vs tokens, fitted curves dashed);
scores.json (a cache: delete it to rescore).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

from t5lab.errors import UserError
from t5lab.experiments.runner import RunSpec, run_dir, run_experiment
from t5lab.experiments.scaling_fit import ScalingFit, fit_scaling_law
from t5lab.experiments.sweep import Sweep

OWN_TASK = ""  # scored task key meaning "each run's pretraining task"


def _column(task: str) -> str:
    return task or "pretraining"


def _run_setup(plan: Sweep, spec: RunSpec) -> tuple[object, str, dict]:
    """(T5Config, task, feature lengths) of a run, from its own gin."""
    import gin

    from t5lab import gin_setup

    bindings = [*spec.bindings, f"MODEL_DIR = {json.dumps(run_dir(plan.exp_dir, spec.name))}"]
    gin_setup.parse_flags(gin_files=list(spec.gin_files), bindings=bindings, search_paths=[])
    return (
        gin_setup.configurable("T5Config")(),
        gin.query_parameter("%MIXTURE_OR_TASK_NAME"),
        dict(gin.query_parameter("%TASK_FEATURE_LENGTHS")),
    )


class _Scores:
    """Scores by (task, members), cached in scores.json so a rerun does not re-evaluate."""

    def __init__(self, plan: Sweep):
        self.plan = plan
        self.path = os.path.join(plan.exp_dir, "scores.json")
        self.specs = {spec.name: spec for spec in plan.runs}
        self.cache: dict[str, dict] = {}
        if os.path.exists(self.path):
            with open(self.path) as handle:
                self.cache = json.load(handle)

    def get(self, members: tuple[str, ...]) -> dict:
        from t5lab.experiments.ensemble import ensemble_validation

        key = "+".join(members)
        if key not in self.cache:
            config, task, lengths = _run_setup(self.plan, self.specs[members[0]])
            self.cache[key] = {
                "task": task,
                **ensemble_validation(
                    model_dirs=[run_dir(self.plan.exp_dir, m) for m in members],
                    mixture_or_task_name=task,
                    task_feature_lengths=lengths,
                    model_config=config,
                    batch_size=self.plan.eval_batch_size,
                    eval_batches=self.plan.eval_batches,
                ),
            }
            with open(self.path, "w") as handle:
                json.dump(self.cache, handle, indent=2, sort_keys=True)
        return self.cache[key]


def fit_points(plan: Sweep, results: Mapping[str, dict], scores: _Scores) -> list[dict]:
    """One (N, D, L) point per distinct pretraining run (ensemble members included)."""
    points, seen = [], set()
    for point in plan.points:
        for run in point.pretrain_runs:
            if run in seen:
                continue
            seen.add(run)
            points.append(
                {
                    "run": run,
                    "params": results[run]["train"]["num_params"],
                    "tokens": point.tokens(plan.task_feature_lengths),
                    "loss": scores.get((run,))["loss"],
                }
            )
    return points


def try_fit(points: list[dict]) -> tuple[ScalingFit | None, str]:
    """The fit, or None and the reason it could not be made."""
    try:
        fit = fit_scaling_law(
            params=[p["params"] for p in points],
            tokens=[p["tokens"] for p in points],
            losses=[p["loss"] for p in points],
        )
    except UserError as error:
        return None, str(error)
    shapes = len({(p["params"], p["tokens"]) for p in points})
    note = ""
    if shapes <= 5:
        note = (
            f"only {shapes} distinct (N, D) for 5 free parameters: the fit describes these "
            "runs, it does not predict others"
        )
    return fit, note


def run_sweep(*, plan: Sweep, show_progress: bool = True) -> dict:
    """Train every run (finished ones are skipped), score, fit, and write the report."""
    from t5lab.experiments.report import write_report

    os.makedirs(plan.exp_dir, exist_ok=True)
    results = run_experiment(
        exp_dir=plan.exp_dir, runs=list(plan.runs), show_progress=show_progress
    )
    scores = _Scores(plan)
    table: dict[str, dict[str, list[float]]] = {}
    rows = []
    for point in plan.points:
        row = {
            "name": point.name,
            "model": point.model,
            "members": point.ensemble,
            "ensemble_of": point.ensemble_of,
            "params_per_member": results[point.pretrain_runs[0]]["train"]["num_params"],
            "pretrain_tokens_per_member": point.tokens(plan.task_feature_lengths),
            "train_steps": point.train_steps,
            "batch_size": point.batch_size,
            "scores": {},
        }
        for task, members in point.members.items():
            score = scores.get(members)
            row["scores"][_column(task)] = score
            table.setdefault(point.name, {})[f"{_column(task)}/loss"] = [score["loss"]]
            table[point.name][f"{_column(task)}/accuracy"] = [score["accuracy"]]
        rows.append(row)
    losses = [f"{_column(t)}/loss" for t in plan.scored_tasks]
    report = write_report(
        exp_dir=plan.exp_dir,
        title=f"Sweep {plan.name}: validation loss and token accuracy (ensembles: mean logits)",
        results=table,
        lower_is_better=losses,
    )
    points = fit_points(plan, results, scores)
    fit, note = try_fit(points)
    summary = {
        "name": plan.name,
        "rows": rows,
        "fit_points": points,
        "fit": fit.as_dict() if fit else None,
        "fit_note": note,
    }
    with open(os.path.join(plan.exp_dir, "sweep.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    with open(report.markdown_path, "a") as handle:
        handle.write(markdown_appendix(rows=rows, points=points, fit=fit, note=note))
    plot_scaling(points=points, fit=fit, path=os.path.join(plan.exp_dir, "scaling.png"))
    return summary


def _count(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:g}"


def markdown_appendix(
    *, rows: list[dict], points: list[dict], fit: ScalingFit | None, note: str
) -> str:
    """The rows' shapes and the L(N, D) fit with its per-run residuals."""
    lines = [
        "",
        "## Rows",
        "",
        "Ensemble gain: the members' mean loss minus the ensemble's (same batches).",
        "",
        "| row | members | params / member | pretraining tokens / member | steps | batch "
        "| ensemble gain |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        kind = f" ({row['ensemble_of']})" if row["members"] > 1 else ""
        gains = [
            f"{task} {sum(s['member_losses']) / len(s['member_losses']) - s['loss']:+.4f}"
            for task, s in row["scores"].items()
        ]
        lines.append(
            f"| {row['name']} | {row['members']}{kind} | {_count(row['params_per_member'])} | "
            f"{_count(row['pretrain_tokens_per_member'])} | {row['train_steps']} | "
            f"{row['batch_size']} | {'; '.join(gains) if row['members'] > 1 else '–'} |"
        )
    lines += ["", "## L(N, D) fit", ""]
    if fit is None:
        lines.append(f"Not fitted: {note}.")
        return "\n".join(lines) + "\n"
    lines += [
        f"`{fit.formula()}` (N parameters, D pretraining token positions), fitted to "
        f"{fit.num_points} pretraining runs with {fit.method}; RMS log residual "
        f"{fit.rmse_log:.4f}." + (f" Note: {note}." if note else ""),
        "",
        "| run | N | D | loss | fitted | log residual |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for point, residual in zip(points, fit.log_residuals, strict=True):
        fitted = point["loss"] * math.exp(residual)
        lines.append(
            f"| {point['run']} | {_count(point['params'])} | {_count(point['tokens'])} | "
            f"{point['loss']:.4f} | {fitted:.4f} | {residual:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot_scaling(*, points: list[dict], fit: ScalingFit | None, path: str) -> None:
    """Log-log loss vs N (one colour per D) and vs D (one colour per N); fit dashed."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter

    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    n = np.array([p["params"] for p in points], float)
    d = np.array([p["tokens"] for p in points], float)
    loss = np.array([p["loss"] for p in points], float)
    for index, (x, other, xlabel, other_label) in enumerate(
        ((n, d, "parameters N", "D"), (d, n, "pretraining tokens D", "N"))
    ):
        axes = figure.add_subplot(1, 2, index + 1)
        for value in np.unique(other):
            mask = other == value
            line = axes.plot(x[mask], loss[mask], "o", label=f"{other_label} = {_count(value)}")
            if fit is not None:
                grid = np.geomspace(x.min(), x.max(), 50)
                curve = (
                    fit.predict(params=grid, tokens=value)
                    if index == 0
                    else fit.predict(params=value, tokens=grid)
                )
                axes.plot(grid, curve, "--", color=line[0].get_color())
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        axes.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
        axes.set_xlabel(xlabel)
        axes.set_ylabel("validation loss")
        axes.legend(fontsize=7)
    figure.suptitle(fit.formula() if fit else "validation loss (no fit)")
    figure.savefig(path, dpi=100)
