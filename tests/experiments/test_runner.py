"""The experiment runner: fine-tunes start from the named run, finished runs are not redone."""

import json

import pytest

from t5lab.errors import UserError
from t5lab.experiments.runner import RunSpec, run_experiment

MICRO = ("tests/fixtures/micro.gin",)
FAST = ("TRAIN_STEPS = 4", "train.eval_every_steps = 4", "train.checkpoint_every_steps = 4")


def test_init_from_starts_at_the_earlier_runs_weights_and_reruns_skip(tmp_path):
    runs = [
        RunSpec(name="pre", gin_files=MICRO, bindings=FAST),
        RunSpec(name="ft", gin_files=MICRO, bindings=FAST, init_from="pre"),
    ]
    results = run_experiment(exp_dir=str(tmp_path), runs=runs, show_progress=False)
    pre, ft = results["pre"]["train"], results["ft"]["train"]
    assert pre["final_step"] == ft["final_step"] == 4
    assert pre["num_params"] > 0
    first = [
        json.loads(line)
        for line in (tmp_path / "runs" / "ft" / "metrics.jsonl").read_text().splitlines()
    ]
    first_validation = next(m for m in first if m["split"] == "validation")
    # Same validation batches (same seed), same starting weights.
    assert first_validation["step"] == 0
    assert first_validation["loss"] == pytest.approx(pre["last_validation"]["loss"], rel=1e-5)

    stamp = (tmp_path / "runs" / "pre" / "result.json").stat().st_mtime_ns
    again = run_experiment(exp_dir=str(tmp_path), runs=runs, show_progress=False)
    assert (tmp_path / "runs" / "pre" / "result.json").stat().st_mtime_ns == stamp
    assert again["ft"]["train"] == ft


def test_a_changed_run_in_the_same_directory_is_refused(tmp_path):
    (tmp_path / "runs" / "pre").mkdir(parents=True)
    (tmp_path / "runs" / "pre" / "result.json").write_text(json.dumps({"fingerprint": "old"}))
    with pytest.raises(UserError, match="different run configuration"):
        run_experiment(
            exp_dir=str(tmp_path),
            runs=[RunSpec(name="pre", gin_files=MICRO, bindings=FAST)],
            show_progress=False,
        )


@pytest.mark.parametrize(
    "runs, message",
    [
        ([RunSpec(name="a", gin_files=MICRO), RunSpec(name="a", gin_files=MICRO)], "two runs"),
        ([RunSpec(name="b", gin_files=MICRO, init_from="a")], "not an earlier run"),
        ([RunSpec(name="x/y", gin_files=MICRO)], "bad run name"),
    ],
)
def test_bad_run_lists_fail_before_training(tmp_path, runs, message):
    with pytest.raises(UserError, match=message):
        run_experiment(exp_dir=str(tmp_path), runs=runs, show_progress=False)


def test_a_scanned_fine_tune_starts_from_an_unrolled_run(tmp_path):
    runs = [
        RunSpec(name="pre", gin_files=MICRO, bindings=FAST),
        RunSpec(
            name="ft",
            gin_files=MICRO,
            bindings=(*FAST, "T5Config.scan_layers = True"),
            init_from="pre",
        ),
    ]
    results = run_experiment(exp_dir=str(tmp_path), runs=runs, show_progress=False)
    lines = (tmp_path / "runs" / "ft" / "metrics.jsonl").read_text().splitlines()
    first = next(m for m in map(json.loads, lines) if m["split"] == "validation")
    pre = results["pre"]["train"]["last_validation"]["loss"]
    assert first["step"] == 0 and first["loss"] == pytest.approx(pre, rel=1e-5)
