"""The sweep report: fit section with per-run residuals, refusal notes, and the log-log plot."""

from __future__ import annotations

import numpy as np

from t5lab.experiments.sweep_results import markdown_appendix, plot_scaling, try_fit


def runs(sizes, token_counts, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        for d in token_counts:
            loss = (2.0 + 300 / n**0.3 + 500 / d**0.3) * np.exp(rng.normal(0, 0.003))
            out.append({"run": f"pt-{n:g}-{d:g}", "params": n, "tokens": d, "loss": loss})
    return out


ROW = {
    "name": "4x ensembled",
    "members": 4,
    "ensemble_of": "pretrain",
    "params_per_member": 1_344_512,
    "pretrain_tokens_per_member": 128_000,
    "train_steps": 100,
    "batch_size": 16,
    "scores": {"sotu_nsp": {"loss": 1.0, "member_losses": [1.2, 1.1, 1.3, 1.2]}},
}


def test_report_lists_the_fit_and_each_runs_residual(tmp_path) -> None:
    points = runs([1e6, 4e6, 1.6e7], [1e8, 4e8, 1.6e9])
    fit, note = try_fit(points)
    assert fit is not None and note == ""
    text = markdown_appendix(rows=[ROW], points=points, fit=fit, note=note)
    assert fit.formula() in text
    assert "| 4x ensembled | 4 (pretrain) | 1.34M | 128k | 100 | 16 | sotu_nsp +0.2000 |" in text
    for point, residual in zip(points, fit.log_residuals, strict=True):
        assert f"| {point['run']} |" in text and f"{residual:+.4f}" in text
    path = tmp_path / "scaling.png"
    plot_scaling(points=points, fit=fit, path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_shapes_are_noted_or_refused() -> None:
    # Table 13's shape: five distinct (N, D) -> fitted, with a warning that it cannot predict.
    shapes = [(1e6, 1e8), (1e6, 4e8), (2e6, 2e8), (4e6, 1e8), (1e6, 4e8)]
    points = [
        {"run": str(i), "params": n, "tokens": d, "loss": 3.0 + i / 10}
        for i, (n, d) in enumerate(shapes)
    ]
    fit, note = try_fit(points)
    assert fit is not None and "only 4 distinct (N, D)" in note
    fit, note = try_fit(points[:3])
    assert fit is None and "at least 5 runs" in note
    assert "Not fitted: fitting L(N, D) needs at least 5 runs" in markdown_appendix(
        rows=[], points=points[:3], fit=None, note=note
    )
