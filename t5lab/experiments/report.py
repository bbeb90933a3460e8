"""An experiment's results table: mean ± std over seeds, the best per column, and its ties.

Input: `{variant: {column: [value_seed0, value_seed1, ...]}}`, columns such as
`"vader_sentiment/accuracy"`. An `average` column is added per seed, as T5 reports it: the
mean over tasks of each task's metrics (columns `task/metric` grouped by `task`, lower-is-better
columns such as losses left out).

Ties follow T5 (Raffel et al. 2020, section 3.1): a score "within two standard deviations of
the best" is not significantly worse. The standard deviation is the *pooled* sample standard
deviation of the column, s_p = sqrt(sum_i (n_i - 1) s_i^2 / sum_i (n_i - 1)) over the variants
with two or more seeds: T5 used one seed-noise estimate (from repeated baseline runs) for all
comparisons, and pooling estimates that common noise with the most degrees of freedom instead
of trusting the best variant's own (possibly lucky, small) spread. A variant is tied when its
mean is within 2 s_p of the best mean. With a single seed everywhere s_p = 0: only exact ties.
"""

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence

from t5lab.errors import UserError

AVERAGE = "average"
TIE_RULE = "within 2 pooled sample std (ddof=1) of the best mean, the std pooled over variants"


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
    """One column across variants."""

    name: str
    lower_is_better: bool
    values: dict[str, list[float]]
    means: dict[str, float]
    stds: dict[str, float]  # sample std (ddof=1); 0.0 for a single seed
    pooled_std: float
    best: str
    ties: list[str]  # variants other than the best, within 2 pooled std of it


@dataclasses.dataclass(frozen=True)
class Report:
    title: str
    variants: list[str]
    columns: list[ColumnSummary]
    json_path: str
    markdown_path: str
    chart_path: str

    def column(self, name: str) -> ColumnSummary:
        return next(c for c in self.columns if c.name == name)


def _sample_std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _pooled_std(values: Mapping[str, Sequence[float]]) -> float:
    squares = sum((len(v) - 1) * statistics.variance(v) for v in values.values() if len(v) > 1)
    freedom = sum(len(v) - 1 for v in values.values())
    return math.sqrt(squares / freedom) if freedom else 0.0


def summarize_column(
    *, name: str, values: Mapping[str, Sequence[float]], lower_is_better: bool = False
) -> ColumnSummary:
    """Means, stds, the best variant (first on equal means) and the variants tied with it."""
    values = {variant: [float(v) for v in seeds] for variant, seeds in values.items()}
    means = {variant: statistics.fmean(seeds) for variant, seeds in values.items()}
    sign = -1.0 if lower_is_better else 1.0
    best = max(means, key=lambda variant: sign * means[variant])
    pooled = _pooled_std(values)
    ties = [
        variant
        for variant, mean in means.items()
        if variant != best and sign * (means[best] - mean) <= 2.0 * pooled
    ]
    return ColumnSummary(
        name=name,
        lower_is_better=lower_is_better,
        values=values,
        means=means,
        stds={variant: _sample_std(seeds) for variant, seeds in values.items()},
        pooled_std=pooled,
        best=best,
        ties=ties,
    )


def _check(results: Mapping[str, Mapping[str, Sequence[float]]]) -> list[str]:
    if not results:
        raise UserError("no results to report")
    variants = list(results)
    columns = list(results[variants[0]])
    for variant in variants:
        if set(results[variant]) != set(columns):
            diff = sorted(set(columns) ^ set(results[variant]))
            raise UserError(f"variant {variant!r} does not have the same columns: {diff}")
        for column, seeds in results[variant].items():
            if len(seeds) == 0:
                raise UserError(f"variant {variant!r} has no values for {column!r}")
            if not all(math.isfinite(float(v)) for v in seeds):
                raise UserError(f"variant {variant!r} has a non-finite value in {column!r}")
    if AVERAGE in columns:
        raise UserError(f"column name {AVERAGE!r} is reserved for the computed average")
    return columns


def average_per_seed(
    *, results: Mapping[str, Mapping[str, Sequence[float]]], columns: Sequence[str]
) -> dict[str, list[float]]:
    """Per variant and seed: the mean over tasks of each task's mean over its columns."""
    averages = {}
    for variant, by_column in results.items():
        seeds = {len(by_column[c]) for c in columns}
        if len(seeds) != 1:
            raise UserError(f"variant {variant!r} has different seed counts across {columns}")
        tasks: dict[str, list[str]] = {}
        for column in columns:
            tasks.setdefault(column.split("/", 1)[0], []).append(column)
        averages[variant] = [
            statistics.fmean(
                statistics.fmean(float(by_column[c][seed]) for c in task_columns)
                for task_columns in tasks.values()
            )
            for seed in range(seeds.pop())
        ]
    return averages


def summarize(
    *,
    results: Mapping[str, Mapping[str, Sequence[float]]],
    lower_is_better: Sequence[str] = (),
    average_over: Sequence[str] | None = None,
) -> list[ColumnSummary]:
    """Every column, then `average` when it averages two or more columns."""
    columns = _check(results)
    unknown = sorted(set(lower_is_better) - set(columns))
    if unknown:
        raise UserError(f"lower_is_better names columns that are not in the results: {unknown}")
    if average_over is None:
        average_over = [c for c in columns if c not in lower_is_better]
    missing = sorted(set(average_over) - set(columns))
    if missing:
        raise UserError(f"average_over names columns that are not in the results: {missing}")
    summaries = [
        summarize_column(
            name=column,
            values={variant: results[variant][column] for variant in results},
            lower_is_better=column in lower_is_better,
        )
        for column in columns
    ]
    if len(average_over) >= 2:
        averages = average_per_seed(results=results, columns=average_over)
        summaries.append(summarize_column(name=AVERAGE, values=averages))
    return summaries


def write_report(
    *,
    exp_dir: str,
    title: str,
    results: Mapping[str, Mapping[str, Sequence[float]]],
    lower_is_better: Sequence[str] = (),
    average_over: Sequence[str] | None = None,
) -> Report:
    """`results.json`, `results.md` and `results.png` in `exp_dir`; returns what they hold."""
    columns = summarize(results=results, lower_is_better=lower_is_better, average_over=average_over)
    os.makedirs(exp_dir, exist_ok=True)
    report = Report(
        title=title,
        variants=list(results),
        columns=columns,
        json_path=os.path.join(exp_dir, "results.json"),
        markdown_path=os.path.join(exp_dir, "results.md"),
        chart_path=os.path.join(exp_dir, "results.png"),
    )
    with open(report.json_path, "w") as f:
        json.dump(_as_json(report, average_over), f, indent=2)
        f.write("\n")
    with open(report.markdown_path, "w") as f:
        f.write(markdown_table(report))
    _bar_chart(report)
    return report


def _as_json(report: Report, average_over: Sequence[str] | None) -> dict:
    averaged = [c.name for c in report.columns if c.name != AVERAGE and not c.lower_is_better]
    if all(c.name != AVERAGE for c in report.columns):
        average_over = averaged = []
    return {
        "title": report.title,
        "tie_rule": TIE_RULE,
        "variants": report.variants,
        "average_over": list(average_over) if average_over is not None else averaged,
        "columns": {
            column.name: {
                "lower_is_better": column.lower_is_better,
                "pooled_std": column.pooled_std,
                "best": column.best,
                "ties": column.ties,
                "variants": {
                    variant: {
                        "mean": column.means[variant],
                        "std": column.stds[variant],
                        "n": len(column.values[variant]),
                        "values": column.values[variant],
                    }
                    for variant in report.variants
                },
            }
            for column in report.columns
        },
    }


def _decimals(column: ColumnSummary) -> int:
    largest = max(abs(m) for m in column.means.values())
    return 4 if largest < 10 else 2 if largest < 100 else 1


def _cell(column: ColumnSummary, variant: str) -> str:
    digits = _decimals(column)
    n = len(column.values[variant])
    text = f"{column.means[variant]:.{digits}f}"
    text += " (n=1)" if n == 1 else f" ± {column.stds[variant]:.{digits}f}"
    if variant == column.best:
        return f"**{text}**"
    return text + " †" if variant in column.ties else text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(report: Report) -> str:
    """Variants as rows, columns as columns; the best bold, ties marked with †."""
    seeds = {v: sorted({len(c.values[v]) for c in report.columns}) for v in report.variants}
    counts = ", ".join(f"{v} {'/'.join(map(str, n))}" for v, n in seeds.items())
    header = [_escape(c.name) + (" ↓" if c.lower_is_better else "") for c in report.columns]
    lines = [
        f"# {report.title}",
        "",
        f"Mean ± sample std over seeds (n seeds: {counts}). **Bold**: best in the column; "
        '†: within 2 pooled std of the best (T5\'s "not significantly worse"); '
        "↓: lower is better.",
        "",
        "| variant | " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(header),
    ]
    for variant in report.variants:
        cells = [_cell(column, variant) for column in report.columns]
        lines.append("| " + " | ".join([_escape(variant), *cells]) + " |")
    pooled = ", ".join(f"{c.name} {c.pooled_std:.{_decimals(c)}f}" for c in report.columns)
    lines += ["", f"Pooled std per column: {pooled}."]
    if all(len(v) == 1 for c in report.columns for v in c.values.values()):
        lines.append("Every variant has n=1 seed: no spread estimate, so only exact ties.")
    return "\n".join(lines) + "\n"


def _bar_chart(report: Report) -> None:
    """One panel per column: a bar per variant with its std as error bar; best darker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = len(report.columns)
    across = min(3, panels)
    down = math.ceil(panels / across)
    figure = Figure(figsize=(4.2 * across, 3.4 * down), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(
        f"{report.title}\nerror bars: sample std over seeds; dark: best, light: within 2 pooled "
        "std of the best"
    )
    positions = range(len(report.variants))
    for index, column in enumerate(report.columns):
        axes = figure.add_subplot(down, across, index + 1)
        colors = [
            "tab:blue" if v == column.best else "tab:cyan" if v in column.ties else "tab:gray"
            for v in report.variants
        ]
        axes.bar(
            positions,
            [column.means[v] for v in report.variants],
            yerr=[column.stds[v] for v in report.variants],
            color=colors,
            capsize=3,
        )
        axes.set_xticks(list(positions), report.variants, rotation=30, ha="right", fontsize=8)
        axes.set_title(column.name + (" (lower is better)" if column.lower_is_better else ""))
    figure.savefig(report.chart_path, dpi=100)
