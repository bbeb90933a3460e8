"""The experiment runner: fine-tunes start from the named run, finished runs are not redone."""

import json
import os
import time

import pytest

from t5lab.errors import UserError
from t5lab.experiments.runner import RunSpec, describe_runs, run_experiment

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


def test_a_result_from_another_vocabulary_is_refused_and_one_without_a_record_is_kept(tmp_path):
    spec = RunSpec(name="pre", gin_files=MICRO, bindings=FAST)
    results = run_experiment(exp_dir=str(tmp_path), runs=[spec], show_progress=False)
    recorded = results["pre"]["vocabularies"]
    assert set(recorded) == {"sotu_span_corruption/inputs", "sotu_span_corruption/targets"}
    path = tmp_path / "runs" / "pre" / "result.json"
    result = json.loads(path.read_text())

    # Same gin, another SentencePiece model behind the task: the old result must not be reused.
    result["vocabularies"] = {**recorded, "sotu_span_corruption/targets": "0" * 16}
    path.write_text(json.dumps(result))
    with pytest.raises(UserError, match="another vocabulary for sotu_span_corruption/targets"):
        run_experiment(exp_dir=str(tmp_path), runs=[spec], show_progress=False)

    # Results written before vocabularies were recorded are read back, not retrained.
    del result["vocabularies"]
    path.write_text(json.dumps(result))
    again = run_experiment(exp_dir=str(tmp_path), runs=[spec], show_progress=False)
    assert again["pre"]["train"] == results["pre"]["train"]


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


def test_a_dry_run_counts_the_steps_a_rerun_would_still_train(tmp_path):
    runs = [
        RunSpec(name="pre", gin_files=MICRO, bindings=("TRAIN_STEPS = 12",)),
        RunSpec(name="ft", gin_files=MICRO, bindings=("TRAIN_STEPS = 8",), init_from="pre"),
        RunSpec(name="other", gin_files=MICRO, bindings=("TRAIN_STEPS = 5",)),
    ]
    (tmp_path / "runs" / "pre").mkdir(parents=True)
    (tmp_path / "runs" / "pre" / "result.json").write_text("{}")
    for step in ("4", "8", "8.orbax-checkpoint-tmp-1"):  # an unfinished save does not count
        (tmp_path / "runs" / "ft" / "checkpoints" / step).mkdir(parents=True, exist_ok=True)
    text = describe_runs(exp_dir=str(tmp_path), runs=runs).splitlines()
    assert text[0] == "[1/3] pre: 12 steps; done"
    assert text[1] == "[2/3] ft: 8 steps, from pre; started, step 8 checkpointed"
    assert text[2] == "[3/3] other: 5 steps; to run"
    assert text[3].endswith("(1 done, 1 started, 1 to run); 5 of 25 steps to train")


def test_wall_time_counts_an_attempt_killed_earlier_up_to_its_last_write(tmp_path):
    directory = tmp_path / "runs" / "pre"
    directory.mkdir(parents=True)
    now = time.time()
    # An attempt started 100 s ago and was killed without a word; its last write was 40 s ago.
    (directory / "attempts.json").write_text(
        json.dumps({"started": now - 100, "earlier_seconds": 5.0, "attempts": 1})
    )
    (directory / "notes.txt").write_text("left by the killed attempt")
    os.utime(directory / "notes.txt", (now - 40, now - 40))

    started = time.perf_counter()
    spec = RunSpec(name="pre", gin_files=MICRO, bindings=FAST)
    result = run_experiment(exp_dir=str(tmp_path), runs=[spec], show_progress=False)["pre"]
    elapsed = time.perf_counter() - started
    assert result["attempts"] == 2
    earlier = 5.0 + 60.0
    assert earlier + result["train"]["seconds"] <= result["wall_seconds"] <= earlier + elapsed + 1
