"""The L(N, D) fit recovers a known law from noisy synthetic runs and shrugs off an outlier."""

from __future__ import annotations

import math

import numpy as np
import pytest

from t5lab.errors import UserError
from t5lab.experiments.scaling_fit import fit_scaling_law

# Chinchilla's published fit (Hoffmann et al. 2022) as the ground truth.
TRUE = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
NOISE = 0.005  # multiplicative log-normal noise on each loss (sigma of log L)


def synthetic_runs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 6 x 6 grid of (N, D) over four decades each; true and noisy losses."""
    n, d = (g.ravel() for g in np.meshgrid(np.logspace(6, 10, 6), np.logspace(8, 12, 6)))
    true = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
    noisy = true * np.exp(np.random.default_rng(seed).normal(0.0, NOISE, true.shape))
    return n, d, true, noisy


def test_fit_recovers_a_known_law_from_noisy_runs() -> None:
    n, d, true, noisy = synthetic_runs(seed=0)
    fit = fit_scaling_law(params=n, tokens=d, losses=noisy)
    # Tolerances: exponents +-0.02, E +-3%, A and B +-15% (A, B trade off against the
    # exponents, so they are the loosest), the law itself within 1% everywhere on the grid.
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.02)
    assert fit.E == pytest.approx(TRUE["E"], rel=0.03)
    assert fit.A == pytest.approx(TRUE["A"], rel=0.15)
    assert fit.B == pytest.approx(TRUE["B"], rel=0.15)
    np.testing.assert_allclose(fit.predict(params=n, tokens=d), true, rtol=0.01)
    # Residuals are the noise: their RMS is close to its sigma.
    assert fit.rmse_log == pytest.approx(NOISE, rel=0.5)
    assert len(fit.log_residuals) == fit.num_points == 36


def test_one_bad_run_does_not_drag_the_fit() -> None:
    n, d, _, noisy = synthetic_runs(seed=0)
    bad = noisy.copy()
    bad[7] *= 1.5  # one run diverged
    fit = fit_scaling_law(params=n, tokens=d, losses=bad)
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.02)
    assert fit.log_residuals[7] == pytest.approx(-math.log(1.5), abs=0.02)


@pytest.mark.parametrize(
    ("params", "tokens", "message"),
    [
        ([1e6, 2e6, 4e6, 8e6], [1e9, 2e9, 4e9, 8e9], "at least 5 runs"),
        ([1e6] * 6, [1e9, 2e9, 4e9, 8e9, 16e9, 32e9], ">= 2 model sizes"),
    ],
)
def test_too_little_variation_is_refused(params, tokens, message) -> None:
    with pytest.raises(UserError, match=message):
        fit_scaling_law(params=params, tokens=tokens, losses=[3.0] * len(params))
