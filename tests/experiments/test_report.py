"""The report on a fixed table whose means, stds, pooled stds, bests and ties are hand-worked."""

import json

import pytest

from t5lab.errors import UserError
from t5lab.experiments import report

# Hand-computed (sample std, ddof=1):
# a/accuracy: base 0.82 ± 0.02, wide 0.781 ± 0.0141421, bad 0.72 ± 0.02.
#   pooled^2 = (2*0.0004 + 1*0.0002 + 2*0.0004) / 5 = 0.00036, s_p = 0.0189737, 2 s_p = 0.0379473.
#   best base; wide is 0.039 behind: NOT tied under the pooled rule (it would be under the best
#   variant's own 2 * 0.02 = 0.04), bad is 0.10 behind.
# b/accuracy: base 0.62 ± 0.02, wide 0.71 ± 0.0141421, bad 0.51 ± 0.0173205;
#   pooled^2 = (0.0008 + 0.0002 + 0.0006) / 5 = 0.00032, 2 s_p = 0.0357771; best wide, no ties.
# loss (lower is better): base 2.2 ± 0.2, wide 2.1 ± 0.0707107, bad 3.0 ± 0;
#   pooled^2 = (0.08 + 0.005 + 0) / 5 = 0.017, 2 s_p = 0.2607681; best wide, base tied (0.1).
# average of a and b per seed (loss left out): base [0.70, 0.72, 0.74] = 0.72 ± 0.02,
#   wide [0.7355, 0.7555] = 0.7455 ± 0.0141421, bad [0.60, 0.61, 0.635] = 0.615 ± 0.0180278;
#   pooled^2 = (0.0008 + 0.0002 + 0.00065) / 5 = 0.00033, 2 s_p = 0.0363318;
#   best wide, base tied (0.0255 behind), bad not.
RESULTS = {
    "base": {
        "a/accuracy": [0.80, 0.82, 0.84],
        "b/accuracy": [0.60, 0.62, 0.64],
        "loss": [2.0, 2.2, 2.4],
    },
    "wide": {"a/accuracy": [0.771, 0.791], "b/accuracy": [0.70, 0.72], "loss": [2.05, 2.15]},
    "bad": {
        "a/accuracy": [0.70, 0.72, 0.74],
        "b/accuracy": [0.50, 0.50, 0.53],
        "loss": [3.0, 3.0, 3.0],
    },
}
EXPECTED = {  # column: (means, stds, pooled std, best, ties)
    "a/accuracy": (
        {"base": 0.82, "wide": 0.781, "bad": 0.72},
        {"base": 0.02, "wide": 0.0141421, "bad": 0.02},
        0.0189737,
        "base",
        [],
    ),
    "b/accuracy": (
        {"base": 0.62, "wide": 0.71, "bad": 0.51},
        {"base": 0.02, "wide": 0.0141421, "bad": 0.0173205},
        0.0178885,
        "wide",
        [],
    ),
    "loss": (
        {"base": 2.2, "wide": 2.1, "bad": 3.0},
        {"base": 0.2, "wide": 0.0707107, "bad": 0.0},
        0.1303840,
        "wide",
        ["base"],
    ),
    "average": (
        {"base": 0.72, "wide": 0.7455, "bad": 0.615},
        {"base": 0.02, "wide": 0.0141421, "bad": 0.0180278},
        0.0181659,
        "wide",
        ["base"],
    ),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> report.Report:
    out = tmp_path_factory.mktemp("exp")
    return report.write_report(
        exp_dir=str(out), title="Fixed table", results=RESULTS, lower_is_better=["loss"]
    )


def test_means_stds_pooled_best_and_ties_match_the_hand_computation(written):
    assert [c.name for c in written.columns] == list(EXPECTED)
    for name, (means, stds, pooled, best, ties) in EXPECTED.items():
        column = written.column(name)
        for variant in RESULTS:
            assert column.means[variant] == pytest.approx(means[variant], abs=1e-9), name
            assert column.stds[variant] == pytest.approx(stds[variant], abs=1e-6), name
        assert column.pooled_std == pytest.approx(pooled, abs=1e-6), name
        assert (column.best, column.ties) == (best, ties), name


def test_json_holds_summary_and_raw_values(written):
    data = json.loads(open(written.json_path).read())
    assert data["average_over"] == ["a/accuracy", "b/accuracy"]
    loss = data["columns"]["loss"]
    assert loss["lower_is_better"] and loss["best"] == "wide" and loss["ties"] == ["base"]
    assert loss["variants"]["wide"] == {
        "mean": pytest.approx(2.1),
        "std": pytest.approx(0.0707107, abs=1e-6),
        "n": 2,
        "values": [2.05, 2.15],
    }
    assert data["columns"]["average"]["variants"]["bad"]["values"] == pytest.approx(
        [0.60, 0.61, 0.635]
    )


def test_markdown_bolds_the_best_and_marks_ties(written):
    text = open(written.markdown_path).read()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    assert "| variant | a/accuracy | b/accuracy | loss ↓ | average |" in text
    assert rows["base"] == (
        "| base | **0.8200 ± 0.0200** | 0.6200 ± 0.0200 | 2.2000 ± 0.2000 † | 0.7200 ± 0.0200 † |"
    )
    assert "**2.1000 ± 0.0707**" in rows["wide"] and "0.7810 ± 0.0141 |" in rows["wide"]
    assert "n seeds: base 3, wide 2, bad 3" in text


def test_chart_is_a_png(written):
    with open(written.chart_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_one_seed_has_std_zero_and_says_n_1(tmp_path):
    result = report.write_report(
        exp_dir=str(tmp_path),
        title="One seed",
        results={"x": {"t/acc": [0.5], "u/acc": [0.7]}, "y": {"t/acc": [0.5], "u/acc": [0.6]}},
    )
    average = result.column("average")
    assert average.stds == {"x": 0.0, "y": 0.0} and average.pooled_std == 0.0
    assert (average.best, average.ties) == ("x", [])  # 0.6 vs 0.55: no spread, no tie
    # Equal means are an exact tie: the first listed is best, the other tied.
    assert (result.column("t/acc").best, result.column("t/acc").ties) == ("x", ["y"])
    text = open(result.markdown_path).read()
    assert "**0.6000 (n=1)**" in text and "only exact ties" in text


def test_average_groups_a_tasks_metrics_first():
    results = {"v": {"t/acc": [1.0], "t/f1": [0.0], "u/acc": [1.0]}}
    # T5-style: task t scores (1 + 0) / 2, then tasks average: (0.5 + 1) / 2, not 2 / 3.
    assert report.average_per_seed(results=results, columns=list(results["v"])) == {"v": [0.75]}


@pytest.mark.parametrize(
    "results, lower, message",
    [
        ({}, (), "no results"),
        ({"a": {"x": [1.0]}, "b": {"y": [1.0]}}, (), "same columns"),
        ({"a": {"x": []}}, (), "no values"),
        ({"a": {"x": [float("nan")]}}, (), "non-finite"),
        ({"a": {"x": [1.0]}}, ("loss",), "not in the results"),
        ({"a": {"average": [1.0]}}, (), "reserved"),
        ({"a": {"x": [1.0], "y": [1.0, 2.0]}}, (), "different seed counts"),
    ],
)
def test_bad_results_are_user_errors(results, lower, message):
    with pytest.raises(UserError, match=message):
        report.summarize(results=results, lower_is_better=lower)
