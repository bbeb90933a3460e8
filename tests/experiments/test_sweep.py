"""Sweep expansion (grid, explicit rows, ensembles, shared runs) and --launch_commands."""

from __future__ import annotations

import shlex

import gin
import pytest

from t5lab import cli, gin_setup
from t5lab.errors import UserError
from t5lab.experiments.sweep import Sweep, expand_grid, launch_commands, sweep

MICRO = "models/t5_1_1_micro.gin"
TINY = "models/t5_1_1_tiny.gin"
LENGTHS = {"inputs": 32, "targets": 12}


def plan_from_gin(path: str, *bindings: str) -> Sweep:
    gin_setup.parse_flags(gin_files=[path], bindings=list(bindings), search_paths=[])
    return gin_setup.call("sweep")


def small(**overrides) -> Sweep:
    kwargs = dict(
        name="t",
        exp_dir="exp",
        base_gin_files=("runs/pretrain.gin",),
        task_feature_lengths=LENGTHS,
    )
    return sweep(**(kwargs | overrides))


def test_grid_is_every_combination_named_by_its_values() -> None:
    plan = small(
        grid={"model": [MICRO, TINY], "train_steps": [10, 40]},
        defaults={"batch_size": 4},
        bindings=("train.eval_batches = 1",),
    )
    assert [p.name for p in plan.points] == [
        "t5_1_1_micro-10steps",
        "t5_1_1_micro-40steps",
        "t5_1_1_tiny-10steps",
        "t5_1_1_tiny-40steps",
    ]
    assert [r.name for r in plan.runs] == [
        "pt-t5_1_1_micro-10s-b4-seed0",
        "pt-t5_1_1_micro-40s-b4-seed0",
        "pt-t5_1_1_tiny-10s-b4-seed0",
        "pt-t5_1_1_tiny-40s-b4-seed0",
    ]
    run = plan.runs[3]
    assert run.gin_files == (TINY, "runs/pretrain.gin")
    assert run.bindings == (
        "TRAIN_STEPS = 40",
        "BATCH_SIZE = 4",
        "SEED = 0",
        'TASK_FEATURE_LENGTHS = {"inputs": 32, "targets": 12}',
        "train.eval_batches = 1",
    )
    assert plan.points[3].members == {"": ("pt-t5_1_1_tiny-40s-b4-seed0",)}
    assert plan.points[3].tokens(LENGTHS) == 40 * 4 * 44


def test_a_gin_binding_axis_gets_its_own_runs() -> None:
    plan = small(
        grid={"span_corruption.noise_density": [0.15, 0.5]},
        defaults={"model": MICRO, "train_steps": 10, "batch_size": 4},
    )
    assert [p.name for p in plan.points] == ["noise_density0.15", "noise_density0.5"]
    first, second = plan.runs
    assert first.bindings[-1] == "span_corruption.noise_density = 0.15"
    assert second.bindings[-1] == "span_corruption.noise_density = 0.5"
    assert first.name != second.name


def test_t5_table13_expands_to_the_papers_rows_sharing_the_baseline() -> None:
    plan = plan_from_gin("gin/sweeps/t5_table13.gin")
    names = [p.name for p in plan.points]
    assert names == [
        "baseline",
        "1x size, 4x training steps",
        "1x size, 4x batch size",
        "2x size, 2x training steps",
        "4x size, 1x training steps",
        "4x ensembled",
        "4x ensembled, fine-tune only",
    ]
    rows = {p.name: p for p in plan.points}
    runs = {r.name: r for r in plan.runs}
    tasks = plan.scored_tasks
    assert len(tasks) == 7
    # 5 shapes + 3 more ensemble members pretrained; each fine-tuned per task, plus 3 more
    # fine-tunes of the baseline per task for the fine-tune-only ensemble.
    assert len([r for r in plan.runs if r.init_from is None]) == 8
    assert len([r for r in plan.runs if r.init_from is not None]) == (8 + 3) * len(tasks)
    baseline = rows["baseline"].pretrain_runs[0]
    assert "TRAIN_STEPS = 524288" in runs[baseline].bindings
    assert (
        "TRAIN_STEPS = 2097152"
        in runs[rows["1x size, 4x training steps"].pretrain_runs[0]].bindings
    )
    assert "BATCH_SIZE = 512" in runs[rows["1x size, 4x batch size"].pretrain_runs[0]].bindings
    assert runs[rows["4x size, 1x training steps"].pretrain_runs[0]].gin_files[0] == (
        "sweeps/models/t5_1_0_4x_base.gin"
    )
    ensemble, finetune_only = rows["4x ensembled"], rows["4x ensembled, fine-tune only"]
    for task in tasks:
        # Separately pretrained members (seeds 0..3), the first being the baseline itself.
        members = ensemble.members[task]
        assert members[0] == rows["baseline"].members[task][0]
        assert [runs[m].init_from for m in members] == list(ensemble.pretrain_runs)
        assert [f"SEED = {s}" in runs[m].bindings for s, m in enumerate(members)] == [True] * 4
        # One pretrained model, fine-tuned four times with seeds 0..3.
        members = finetune_only.members[task]
        assert len(set(members)) == 4
        assert {runs[m].init_from for m in members} == {baseline}
    assert len(set(ensemble.pretrain_runs)) == 4 and finetune_only.pretrain_runs == (baseline,)
    # Every fine-tune starts from a run that comes before it.
    order = [r.name for r in plan.runs]
    assert all(order.index(r.init_from) < order.index(r.name) for r in plan.runs if r.init_from)


def test_launch_commands_reproduce_each_run(capsys) -> None:
    plan = plan_from_gin("gin/sweeps/cpu_tiny.gin", "EXP_DIR = 'exp dir'")
    assert (
        cli.main(
            [
                "sweep",
                "--gin_file=gin/sweeps/cpu_tiny.gin",
                "--gin.EXP_DIR=exp dir",
                "--launch_commands",
            ]
        )
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(lines) == len(plan.runs) == 19
    for line, spec in zip(lines, plan.runs, strict=True):
        words = shlex.split(line)
        assert words[:2] == ["t5lab", "train"]
        rest, bindings = cli._split_gin_shorthand(words[2:])
        args = cli._build_parser().parse_args(["train", *rest])
        cli.parse_gin(args, bindings)
        assert gin.query_parameter("%MODEL_DIR") == f"exp dir/runs/{spec.name}"
        for statement in spec.bindings[:3]:  # TRAIN_STEPS, BATCH_SIZE, SEED
            name, value = statement.split(" = ")
            assert gin.query_parameter(f"%{name}") == int(value)
        if spec.init_from:
            start = gin.query_parameter("train.initial_checkpoint")
            assert start == f"exp dir/runs/{spec.init_from}"
    assert launch_commands(plan)[0] == lines[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(grid={"modle": [MICRO]}), "did you mean 'model'"),
        (dict(points=[{"name": "a", "model": MICRO, "train_steps": 5}]), "sets no batch_size"),
        (
            dict(
                points=[
                    {"name": "a", "model": "models/nope.gin", "train_steps": 5, "batch_size": 2}
                ]
            ),
            "does not exist",
        ),
        (
            dict(
                points=[
                    {
                        "name": "a",
                        "model": MICRO,
                        "train_steps": 5,
                        "batch_size": 2,
                        "ensemble": 2,
                        "ensemble_of": "finetune",
                    }
                ]
            ),
            "no finetune_tasks",
        ),
        (dict(grid={"model": MICRO}), "non-empty list"),
    ],
)
def test_bad_sweeps_are_one_line_errors(overrides, message) -> None:
    with pytest.raises(UserError, match=message):
        small(**overrides)


def test_expand_grid_varies_the_last_axis_fastest() -> None:
    combos = expand_grid({"train_steps": [1, 2], "batch_size": [8, 16]})
    assert [(c["train_steps"], c["batch_size"]) for c in combos] == [
        (1, 8),
        (1, 16),
        (2, 8),
        (2, 16),
    ]
