"""Pretrain → fine-tune → evaluate pipelines shared by `t5lab regimes` and `t5lab study`.

An experiment is a list of variants; a variant says, for each downstream task, which
pretraining run the task starts from (a `Stage`: one task, a mixture, or nothing) and
whether the task is then fine-tuned or the pretrained model is scored directly (multitask
training). Stages equal across variants or tasks are trained once. Every scored model is
picked on validation (best kept checkpoint) and reported on test, over `num_seeds` seeds.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence

from t5lab.errors import UserError
from t5lab.experiments.runner import RunSpec, run_experiment

RUN_GIN = "runs/pretrain.gin"
FINETUNE_GIN = "runs/finetune.gin"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pretraining run: a single task, or a mixture of tasks at a mixing rate."""

    key: str  # run-name stem; equal keys must describe equal runs
    steps: int
    task: str | None = None
    mixture_tasks: tuple[str, ...] = ()
    mixing_rate: Callable | None = None  # None: the settings' rate
    gin_files: tuple[str, ...] = ()  # e.g. an objective's gin file (it names the task itself)
    bindings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    pretraining: Callable[[str], Stage | None]  # target task -> where it starts (None: scratch)
    finetune: bool = True  # False: score the pretraining run itself on each task


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabSettings:
    """What every variant shares: model, lengths, budgets, seeds, mixing, evaluation."""

    exp_dir: str
    model_gin_files: tuple[str, ...]
    tasks: tuple[str, ...]
    unsupervised_task: str = "sotu_span_corruption"
    task_feature_lengths: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"inputs": 128, "targets": 32}
    )
    batch_size: int = 32
    pretrain_steps: int = 1000
    finetune_steps: int = 500
    num_seeds: int = 3
    mixing_rate: Callable | None = None  # None: examples-proportional, K = 2**19
    run_bindings: tuple[str, ...] = ()  # gin statements for every run (eval/checkpoint cadence)
    finetune_bindings: tuple[str, ...] = ()
    eval_examples: int = 200
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        if not self.tasks:
            raise UserError("lab_settings.tasks is empty: name at least one downstream task")
        for name, value in (
            ("num_seeds", self.num_seeds),
            ("pretrain_steps", self.pretrain_steps),
            ("finetune_steps", self.finetune_steps),
            ("eval_examples", self.eval_examples),
        ):
            if value < 1:
                raise UserError(f"lab_settings.{name} must be >= 1, got {value}")
        if not self.exp_dir:
            raise UserError("EXP_DIR is not set: pass --gin.EXP_DIR='\"experiments/name\"'")


def _default_rate():
    from t5lab.data.mixing import ExamplesProportional

    return ExamplesProportional(cap=2**19)


def _lengths_binding(lengths: Mapping[str, int]) -> str:
    return f"TASK_FEATURE_LENGTHS = {json.dumps(dict(lengths))}"


def _common_bindings(settings: LabSettings, seed: int) -> list[str]:
    return [
        f"BATCH_SIZE = {settings.batch_size}",
        f"SEED = {seed}",
        _lengths_binding(settings.task_feature_lengths),
        *settings.run_bindings,
    ]


def _stage_run(settings: LabSettings, stage: Stage, seed: int) -> RunSpec:
    from t5lab.data.mixing import define_mixture

    bindings = [*_common_bindings(settings, seed), f"TRAIN_STEPS = {stage.steps}"]
    if stage.mixture_tasks:
        name = define_mixture(
            name=f"lab_{stage.key}",
            tasks=stage.mixture_tasks,
            rate=stage.mixing_rate or settings.mixing_rate or _default_rate(),
        )
        bindings.append(f"MIXTURE_OR_TASK_NAME = {json.dumps(name)}")
    elif stage.task:
        bindings.append(f"MIXTURE_OR_TASK_NAME = {json.dumps(stage.task)}")
    return RunSpec(
        name=f"{stage.key}-seed{seed}",
        gin_files=(*settings.model_gin_files, RUN_GIN, *stage.gin_files),
        bindings=(*bindings, *stage.bindings),
    )


def plan_runs(
    *, settings: LabSettings, variants: Sequence[Variant]
) -> tuple[list[RunSpec], dict[tuple[str, int, str], str]]:
    """The runs in dependency order, and which run scores each (variant, seed, task)."""
    if len({v.name for v in variants}) != len(variants):
        raise UserError("two variants share a name")
    specs: dict[str, RunSpec] = {}
    scored_by: dict[tuple[str, int, str], str] = {}
    direct: dict[str, list[str]] = {}  # pretraining run -> tasks it is scored on directly
    for seed in range(settings.num_seeds):
        for variant in variants:
            for task in settings.tasks:
                stage = variant.pretraining(task)
                start = None
                if stage is not None:
                    spec = _stage_run(settings, stage, seed)
                    if spec.name in specs and specs[spec.name] != spec:
                        raise UserError(f"stage {stage.key!r} is defined twice differently")
                    specs.setdefault(spec.name, spec)
                    start = spec.name
                if not variant.finetune:
                    if start is None:
                        raise UserError(f"variant {variant.name!r} scores nothing: no pretraining")
                    direct.setdefault(start, [])
                    if task not in direct[start]:
                        direct[start].append(task)
                    scored_by[(variant.name, seed, task)] = start
                    continue
                name = f"{variant.name}-ft-{task}-seed{seed}"
                specs[name] = RunSpec(
                    name=name,
                    gin_files=(*settings.model_gin_files, RUN_GIN, FINETUNE_GIN),
                    bindings=(
                        *_common_bindings(settings, seed),
                        f"TRAIN_STEPS = {settings.finetune_steps}",
                        f"MIXTURE_OR_TASK_NAME = {json.dumps(task)}",
                        *settings.finetune_bindings,
                    ),
                    init_from=start,
                    evaluate_tasks=(task,),
                )
                scored_by[(variant.name, seed, task)] = name
    runs = [
        dataclasses.replace(spec, evaluate_tasks=tuple(direct[spec.name]))
        if spec.name in direct
        else spec
        for spec in specs.values()
    ]
    return runs, scored_by


def _evaluator(settings: LabSettings) -> Callable[..., dict]:
    def evaluate(*, model_dir: str, task: str) -> dict:
        """Best kept checkpoint on validation, reported on test (uses the run's gin)."""
        import gin

        from t5lab import gin_setup
        from t5lab.eval.evaluator import select_best_checkpoint

        result = select_best_checkpoint(
            model_dir=model_dir,
            mixture_or_task_name=task,
            task_feature_lengths=gin.query_parameter("%TASK_FEATURE_LENGTHS"),
            model_config=gin_setup.configurable("T5Config")(),
            batch_size=settings.eval_batch_size,
            max_examples=settings.eval_examples,
        )
        return {
            "best_step": result["best_step"],
            "validation": result["validation"],
            "test": result["test"]["tasks"].get(task, {}),
        }

    return evaluate


def collect(
    *,
    results: Mapping[str, dict],
    scored_by: Mapping[tuple[str, int, str], str],
    variants: Sequence[Variant],
    settings: LabSettings,
) -> dict[str, dict[str, list[float]]]:
    """{variant: {"task/metric": [value per seed]}} from the test scores.

    The report adds T5's average: the mean over tasks of each task's mean metric.
    """
    table: dict[str, dict[str, list[float]]] = {}
    for variant in variants:
        columns: dict[str, list[float]] = {}
        for seed in range(settings.num_seeds):
            for task in settings.tasks:
                scores = results[scored_by[(variant.name, seed, task)]]["metrics"][task]["test"]
                for metric, value in sorted(scores.items()):
                    columns.setdefault(f"{task}/{metric}", []).append(float(value))
        table[variant.name] = columns
    return table


def run_lab(
    *,
    settings: LabSettings,
    variants: Sequence[Variant],
    title: str,
    show_progress: bool = True,
):
    """Train, score and report every variant; rerunning skips what is already finished.

    Returns the report and the summed wall time of all runs (training + scoring)."""
    from t5lab.experiments.report import write_report

    os.makedirs(settings.exp_dir, exist_ok=True)
    runs, scored_by = plan_runs(settings=settings, variants=variants)
    results = run_experiment(
        exp_dir=settings.exp_dir,
        runs=runs,
        show_progress=show_progress,
        evaluate_fn=_evaluator(settings),
    )
    table = collect(results=results, scored_by=scored_by, variants=variants, settings=settings)
    report = write_report(exp_dir=settings.exp_dir, title=title, results=table)
    seconds = sum(result.get("wall_seconds", 0.0) for result in results.values())
    return report, seconds
