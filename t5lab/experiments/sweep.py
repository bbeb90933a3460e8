"""Scaling sweeps: a grid (or list) of model size x training steps x batch size x ensemble
size, expanded into runs, trained one after another (or printed as `t5lab train` commands
for a pod), scored, tabulated and fitted with L(N, D) = E + A/N^alpha + B/D^beta.

A point is one row of the table. Its axes: `model` (a model gin file), `train_steps`,
`batch_size`, `ensemble` (k members, default 1) and `ensemble_of` ("pretrain": k separately
pretrained and fine-tuned models; "finetune": one pretrained model fine-tuned k times, T5
table 13's "ensembled, fine-tune only"); any other axis name is a gin binding
(`"span_corruption.noise_density": [0.15, 0.5]`). Members differ only by SEED.

Runs are named by what they train, not by the row that asked for them, so rows sharing a run
(table 13's baseline is the first member of its ensembles) train it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from t5lab.errors import UserError, did_you_mean
from t5lab.experiments.runner import RunSpec, run_dir

AXES = ("model", "train_steps", "batch_size", "ensemble", "ensemble_of")
# Set by the sweep itself: a binding of these would silently disagree with the table.
_OWN_MACROS = ("TRAIN_STEPS", "BATCH_SIZE", "SEED", "TASK_FEATURE_LENGTHS", "MODEL_DIR")
ENSEMBLE_KINDS = ("pretrain", "finetune")


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One row: its shape, the pretraining runs behind it and, per scored task, the runs
    whose logits are averaged."""

    name: str
    model: str
    train_steps: int
    batch_size: int
    ensemble: int
    ensemble_of: str
    bindings: tuple[str, ...]
    pretrain_runs: tuple[str, ...]
    members: Mapping[str, tuple[str, ...]]  # scored task -> final-stage run names

    def tokens(self, lengths: Mapping[str, int]) -> int:
        """Token positions one member sees in pretraining: steps x batch x (inputs + targets)."""
        return self.train_steps * self.batch_size * sum(lengths.values())


@dataclasses.dataclass(frozen=True)
class Sweep:
    """An expanded sweep: rows, the runs in dependency order, and how to score them."""

    name: str
    exp_dir: str
    points: tuple[SweepPoint, ...]
    runs: tuple[RunSpec, ...]
    task_feature_lengths: Mapping[str, int]
    scored_tasks: tuple[str, ...]  # finetune tasks, or ("",): each run's own pretraining task
    eval_batches: int
    eval_batch_size: int


def _stem(gin_file: str) -> str:
    return os.path.splitext(os.path.basename(gin_file))[0]


def _check_gin_file(path: str) -> None:
    from t5lab.gin_setup import REPO_GIN_DIR

    if os.path.isfile(path) or (REPO_GIN_DIR / path).is_file():
        return
    known = [str(p.relative_to(REPO_GIN_DIR)) for p in REPO_GIN_DIR.rglob("*.gin")]
    hint = did_you_mean(path, known)
    raise UserError(f"sweep names a gin file that does not exist: {path}{hint}")


def _binding(name: str, value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return f"{name} = {text}"


def _label(axis: str, value: Any) -> str:
    if axis == "model":
        return _stem(value)
    if axis == "train_steps":
        return f"{value}steps"
    if axis == "batch_size":
        return f"b{value}"
    if axis == "ensemble":
        return f"x{value}"
    if axis == "ensemble_of":
        return f"{value}-ensemble"
    return f"{axis.rsplit('.', 1)[-1]}{value}"


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the first axis varies slowest), each named by
    its values, e.g. `t5_1_1_tiny-400steps-b16`."""
    for axis, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise UserError(f"sweep grid axis {axis!r} needs a non-empty list of values")
    combos = []
    for values in itertools.product(*grid.values()):
        combo = dict(zip(grid, values, strict=True))
        combo["name"] = "-".join(_label(axis, v) for axis, v in combo.items())
        combos.append(combo)
    return combos


def _bindings_tag(bindings: Sequence[str]) -> str:
    """A short content hash: points with their own bindings get their own runs."""
    if not bindings:
        return ""
    return "-" + hashlib.sha256("\n".join(bindings).encode()).hexdigest()[:6]


class _Planner:
    """Collects runs by name, insisting that a name always means the same run."""

    def __init__(self) -> None:
        self.runs: dict[str, RunSpec] = {}

    def add(self, spec: RunSpec) -> str:
        if self.runs.setdefault(spec.name, spec) != spec:
            raise UserError(f"run {spec.name!r} is asked for with two different configurations")
        return spec.name


def _check_bindings(statements: Sequence[str], where: str) -> None:
    for statement in statements:
        name = statement.split("=", 1)[0].strip()
        if name in _OWN_MACROS:
            raise UserError(
                f"{where} binds {name}, which the sweep sets itself (use the train_steps, "
                "batch_size, seed or task_feature_lengths settings)"
            )


def _point(
    raw: Mapping[str, Any], *, defaults: Mapping[str, Any], finetune: bool
) -> dict[str, Any]:
    values = {"ensemble": 1, "ensemble_of": "pretrain", **defaults, **raw}
    name = values.pop("name", None)
    if not name:
        raise UserError(f"sweep point {dict(raw)} has no name")
    bindings = [str(b) for b in values.pop("bindings", ())]
    for axis in list(values):
        if axis not in AXES:
            if "." not in axis and not axis.isupper():
                hint = did_you_mean(axis, AXES)
                raise UserError(f"sweep axis {axis!r} is neither {AXES} nor a gin binding{hint}")
            bindings.append(_binding(axis, values.pop(axis)))
    _check_bindings(bindings, f"sweep point {name!r}")
    missing = [axis for axis in ("model", "train_steps", "batch_size") if axis not in values]
    if missing:
        raise UserError(f"sweep point {name!r} sets no {', '.join(missing)}")
    if values["ensemble_of"] not in ENSEMBLE_KINDS:
        kind = values["ensemble_of"]
        raise UserError(f"ensemble_of must be one of {ENSEMBLE_KINDS}, got {kind!r}")
    if values["ensemble_of"] == "finetune" and not finetune:
        raise UserError(f"point {name!r} ensembles fine-tunes but the sweep has no finetune_tasks")
    for axis in ("train_steps", "batch_size", "ensemble"):
        if not isinstance(values[axis], int) or values[axis] < 1:
            raise UserError(f"point {name!r}: {axis} must be a positive integer")
    _check_gin_file(values["model"])
    return {"name": str(name), "bindings": tuple(bindings), **values}


def sweep(
    *,
    name: str,
    exp_dir: str,
    base_gin_files: Sequence[str],
    task_feature_lengths: Mapping[str, int],
    grid: Mapping[str, Sequence[Any]] | None = None,
    points: Sequence[Mapping[str, Any]] = (),
    defaults: Mapping[str, Any] | None = None,
    bindings: Sequence[str] = (),
    seed: int = 0,
    finetune_tasks: Sequence[str] = (),
    finetune_steps: int = 0,
    finetune_gin_files: Sequence[str] = ("runs/finetune.gin",),
    finetune_bindings: Sequence[str] = (),
    eval_batches: int = 4,
    eval_batch_size: int = 32,
) -> Sweep:
    """Expand `grid` (every combination) and `points` (explicit rows) into a Sweep.

    Each run's gin: the point's model file, `base_gin_files` (e.g. runs/pretrain.gin), then
    bindings for TRAIN_STEPS, BATCH_SIZE, SEED, TASK_FEATURE_LENGTHS, `bindings` and the
    point's own. With `finetune_tasks`, each pretrained member is fine-tuned on every task
    (`finetune_gin_files`, `finetune_steps`, same batch size) and rows are scored there.
    """
    if not exp_dir:
        raise UserError("EXP_DIR is not set: pass --gin.EXP_DIR=experiments/<name>")
    if finetune_tasks and finetune_steps < 1:
        raise UserError("finetune_tasks are set but finetune_steps is not (>= 1)")
    for gin_file in (*base_gin_files, *finetune_gin_files):
        _check_gin_file(gin_file)
    _check_bindings(bindings, "sweep.bindings")
    raws = [*(expand_grid(grid) if grid else []), *points]
    if not raws:
        raise UserError(f"sweep {name!r} has neither grid nor points")
    rows = [_point(r, defaults=defaults or {}, finetune=bool(finetune_tasks)) for r in raws]
    if len({r["name"] for r in rows}) != len(rows):
        raise UserError(f"sweep {name!r} has two points with the same name")
    lengths = f"TASK_FEATURE_LENGTHS = {json.dumps(dict(task_feature_lengths))}"
    planner = _Planner()
    out = []
    for row in rows:
        k, by_finetune = row["ensemble"], row["ensemble_of"] == "finetune"
        pretrain_seeds = [seed] if by_finetune else [seed + i for i in range(k)]
        shape = f"{_stem(row['model'])}-{row['train_steps']}s-b{row['batch_size']}"
        pretrain_runs = []
        for s in pretrain_seeds:
            pretrain_runs.append(
                planner.add(
                    RunSpec(
                        name=f"pt-{shape}{_bindings_tag(row['bindings'])}-seed{s}",
                        gin_files=(row["model"], *base_gin_files),
                        bindings=(
                            f"TRAIN_STEPS = {row['train_steps']}",
                            f"BATCH_SIZE = {row['batch_size']}",
                            f"SEED = {s}",
                            lengths,
                            *bindings,
                            *row["bindings"],
                        ),
                    )
                )
            )
        members: dict[str, tuple[str, ...]] = {}
        for task in finetune_tasks:
            pairs = (
                [(pretrain_runs[0], seed + i) for i in range(k)]
                if by_finetune
                else list(zip(pretrain_runs, pretrain_seeds, strict=True))
            )
            members[task] = tuple(
                planner.add(
                    RunSpec(
                        name=f"{start}-ft-{task}-seed{s}",
                        gin_files=(row["model"], *base_gin_files, *finetune_gin_files),
                        bindings=(
                            f"TRAIN_STEPS = {finetune_steps}",
                            f"BATCH_SIZE = {row['batch_size']}",
                            f"SEED = {s}",
                            lengths,
                            f"MIXTURE_OR_TASK_NAME = {json.dumps(task)}",
                            *bindings,
                            *finetune_bindings,
                        ),
                        init_from=start,
                    )
                )
                for start, s in pairs
            )
        if not finetune_tasks:
            members[""] = tuple(pretrain_runs)
        out.append(
            SweepPoint(
                name=row["name"],
                model=row["model"],
                train_steps=row["train_steps"],
                batch_size=row["batch_size"],
                ensemble=k,
                ensemble_of=row["ensemble_of"],
                bindings=row["bindings"],
                pretrain_runs=tuple(pretrain_runs),
                members=members,
            )
        )
    pretrains = [spec for spec in planner.runs.values() if spec.init_from is None]
    finetunes = [spec for spec in planner.runs.values() if spec.init_from is not None]
    return Sweep(
        name=name,
        exp_dir=exp_dir,
        points=tuple(out),
        runs=tuple(pretrains + finetunes),
        task_feature_lengths=dict(task_feature_lengths),
        scored_tasks=tuple(finetune_tasks) or ("",),
        eval_batches=eval_batches,
        eval_batch_size=eval_batch_size,
    )


def _flag(statement: str) -> str:
    """`NAME = VALUE` as `--gin.NAME=VALUE`; anything else as `--gin_bindings=...`."""
    match = re.fullmatch(r"\s*([\w.]+)\s*=\s*(.+?)\s*", statement, flags=re.DOTALL)
    return f"--gin.{match.group(1)}={match.group(2)}" if match else f"--gin_bindings={statement}"


def launch_commands(plan: Sweep) -> list[str]:
    """One `t5lab train` command line per run, in dependency order (what `run_experiment`
    would run), e.g. to hand each to a pod; the gin flags reproduce the run exactly."""
    lines = []
    for spec in plan.runs:
        statements = [*spec.bindings, _binding("MODEL_DIR", run_dir(plan.exp_dir, spec.name))]
        if spec.init_from:
            start = run_dir(plan.exp_dir, spec.init_from)
            statements.append(_binding("train.initial_checkpoint", start))
        words = ["t5lab", "train", *[f"--gin_file={f}" for f in spec.gin_files]]
        lines.append(shlex.join(words + [_flag(s) for s in statements]))
    return lines
