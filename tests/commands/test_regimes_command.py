"""`t5lab regimes` at smoke size, end to end: every regime trains, is scored and reported."""

import json

from t5lab.cli import main


def test_smoke_regimes_write_the_three_report_files_and_rerun_without_training(
    tmp_path, capsys
):
    args = ["regimes", "--gin_file=gin/regimes/smoke.gin", f"--gin.EXP_DIR={tmp_path}", "--quiet"]
    assert main(args) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.png").stat().st_size > 0
    assert (tmp_path / "results.md").read_text() in table
    regimes = [
        "unsupervised_pretrain_finetune",
        "multitask_training",
        "multitask_pretrain_finetune",
        "leave_one_out_finetune",
        "supervised_multitask_finetune",
    ]
    assert report["variants"] == regimes
    for regime in regimes:
        assert f"| {regime} |" in table
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    # 6 pretraining runs (unsupervised, multitask long and short, 2 leave-one-out,
    # supervised) and 4 fine-tuned regimes x 2 tasks
    assert len(runs) == 14
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/result.json")}

    assert main(args) == 0  # finished runs are not redone; the report is rewritten
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((tmp_path / "results.json").read_text()) == report
