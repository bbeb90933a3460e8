"""`t5lab regimes` and `t5lab study` at smoke size, end to end, as the README writes them."""

import json
import re
import shlex

from t5lab.cli import main
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
REGIMES = [
    "unsupervised_pretrain_finetune",
    "multitask_training",
    "multitask_pretrain_finetune",
    "leave_one_out_finetune",
    "supervised_multitask_finetune",
]


def _readme_command(name: str) -> list[str]:
    line = re.search(rf"^t5lab {name} .*$", README, flags=re.M)
    assert line, f"README shows no `t5lab {name}` command"
    return shlex.split(line.group(0))[1:]


def test_readme_smoke_regimes_write_three_report_files_and_rerun_without_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = [*_readme_command("regimes"), "--quiet"]
    exp_dir = tmp_path / next(a.split("=", 1)[1] for a in args if a.startswith("--gin.EXP_DIR"))
    assert main([*args, "--dry_run"]) == 0  # lists the plan, trains and writes nothing
    plan = capsys.readouterr().out
    assert "14 runs in" in plan and "(14 to run)" in plan
    fine_tune = "leave_one_out_finetune-ft-vader_sentiment-seed0: 8 steps"
    assert f"{fine_tune}, from leave_out_vader_sentiment-seed0; to run" in plan
    assert not (exp_dir / "runs").exists()

    assert main(args) == 0
    table = capsys.readouterr().out
    report = json.loads((exp_dir / "results.json").read_text())
    assert (exp_dir / "results.png").stat().st_size > 0
    assert (exp_dir / "results.md").read_text() in table
    assert report["variants"] == REGIMES
    for regime in REGIMES:
        assert f"| {regime} |" in table
    runs = sorted(p.name for p in (exp_dir / "runs").iterdir())
    # 6 pretraining runs (unsupervised, multitask long and short, 2 leave-one-out,
    # supervised) and 4 fine-tuned regimes x 2 tasks
    assert len(runs) == 14
    stamps = {p: p.stat().st_mtime_ns for p in (exp_dir / "runs").glob("*/result.json")}
    assert len(stamps) == 14

    assert main(args) == 0  # finished runs are read back, not redone
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((exp_dir / "results.json").read_text()) == report
    capsys.readouterr()
    assert main([*args, "--dry_run"]) == 0
    assert "(14 done); 0 of " in capsys.readouterr().out


def test_objective_study_compares_an_objective_with_no_pretraining(tmp_path, capsys):
    args = [
        "study",
        "objectives",
        "--gin_file=gin/studies/smoke.gin",
        f"--gin.EXP_DIR={tmp_path}",
        "--gin.LabSettings.tasks=['vader_sentiment']",
        "--variant",
        "bert_mlm",
        "--quiet",
    ]
    assert main(args) == 0
    exp_dir = tmp_path / "objectives"
    report = json.loads((exp_dir / "results.json").read_text())
    assert report["variants"] == ["bert_mlm", "no_pretraining"]
    assert sorted(p.name for p in (exp_dir / "runs").iterdir()) == [
        "bert_mlm-ft-vader_sentiment-seed0",
        "no_pretraining-ft-vader_sentiment-seed0",
        "pretrain_bert_mlm-seed0",
    ]
    config = (exp_dir / "runs" / "pretrain_bert_mlm-seed0" / "config.gin").read_text()
    assert "pretraining_task.objective = @bert_mlm" in config


def test_readme_study_dry_run_lists_the_mixing_runs_and_writes_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = _readme_command("study")
    assert "--dry_run" in args
    assert main(args) == 0
    plan = capsys.readouterr().out.splitlines()
    # one multitask run per mixing rate, each pretraining + fine-tuning steps long (12 + 8)
    assert plan[0].startswith("[1/4] mix_proportional_k2_16-seed0: 20 steps; to run")
    assert plan[-1].endswith("(4 to run); 80 of 80 steps to train")
    assert list(tmp_path.iterdir()) == []
