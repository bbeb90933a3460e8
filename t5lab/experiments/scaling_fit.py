"""Fit L(N, D) = E + A / N^alpha + B / D^beta to (parameters, tokens, loss) points.

The objective is Chinchilla's (Hoffmann et al. 2022, appendix D.2): parameterise
E, A, B as exp(e), exp(a), exp(b), predict log L = logsumexp(a - alpha log N, b - beta log D, e),
and minimise the Huber loss (delta 1e-3) of the log-space residuals. Log space weighs every
point by its relative error, so small runs with large losses do not dominate; Huber keeps one
bad run from dragging the exponents. The optimiser is scipy.optimize.least_squares
(trust-region reflective, `loss="huber"`, analytic Jacobian, alpha and beta in [0, 4]).

Starting points: instead of Chinchilla's 4,500-point grid (minutes here), note that for fixed
(alpha, beta) the law is linear in (E, A, B); a non-negative least-squares solve on a 30 x 30
(alpha, beta) grid costs milliseconds, and the best few solutions start the Huber refinement.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from scipy.optimize import least_squares, nnls
from scipy.special import logsumexp, softmax

from t5lab.errors import UserError

HUBER_DELTA = 1e-3  # Chinchilla's delta, on log-loss residuals
_EXPONENT_GRID = np.linspace(0.05, 1.5, 30)
_REFINED_STARTS = 5


@dataclasses.dataclass(frozen=True)
class ScalingFit:
    """Fitted L(N, D) and how well it describes the points it was fitted to."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    log_residuals: tuple[float, ...]  # log(predicted) - log(observed), per point in input order
    rmse_log: float
    num_points: int
    method: str

    def predict(self, *, params: np.ndarray | float, tokens: np.ndarray | float) -> np.ndarray:
        n, d = np.asarray(params, float), np.asarray(tokens, float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def formula(self) -> str:
        return (
            f"L(N, D) = {self.E:.4g} + {self.A:.4g} / N^{self.alpha:.3f} "
            f"+ {self.B:.4g} / D^{self.beta:.3f}"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"formula": self.formula()}


def _terms(x: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    e, a, alpha, b, beta = x
    return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])


def _starts(n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> list[np.ndarray]:
    """(e, a, alpha, b, beta) starts: per (alpha, beta), the NNLS-best E, A, B."""
    scored = []
    for alpha, beta in itertools.product(_EXPONENT_GRID, _EXPONENT_GRID):
        design = np.stack([np.ones_like(n), n**-alpha, d**-beta], axis=1) / loss[:, None]
        scale = design.max(axis=0)  # columns span many decades: solve on a common scale
        coef = nnls(design / scale, np.ones_like(loss))[0] / scale
        predicted = design @ coef  # predicted / observed
        if np.all(predicted > 0):
            error = float(np.sum(np.log(predicted) ** 2))
            e, a, b = np.log(np.maximum(coef, 1e-12))
            scored.append((error, np.array([e, a, alpha, b, beta])))
    scored.sort(key=lambda item: item[0])
    fallback = np.array([np.log(loss.min() / 2), 0.0, 0.5, 0.0, 0.5])
    return [x for _, x in scored[:_REFINED_STARTS]] or [fallback]


def fit_scaling_law(
    *,
    params: Sequence[float],
    tokens: Sequence[float],
    losses: Sequence[float],
    huber_delta: float = HUBER_DELTA,
) -> ScalingFit:
    """The best Huber fit in log space (see the module docstring); needs >= 5 runs spanning
    >= 2 sizes and >= 2 token counts. Fewer distinct (N, D) than 5 leaves it underdetermined."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (params, tokens, losses))
    if not n.shape == d.shape == loss.shape or n.ndim != 1:
        raise UserError("params, tokens and losses must be equally long lists")
    if len(n) < 5:
        raise UserError(f"fitting L(N, D) needs at least 5 runs, got {len(n)}")
    if np.any(n <= 0) or np.any(d <= 0) or np.any(loss <= 0) or not np.all(np.isfinite(loss)):
        raise UserError("params, tokens and losses must be positive and finite")
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise UserError("fitting L(N, D) needs runs at >= 2 model sizes and >= 2 token counts")
    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)

    def residuals(x: np.ndarray) -> np.ndarray:
        return logsumexp(_terms(x, log_n, log_d), axis=0) - log_loss

    def jacobian(x: np.ndarray) -> np.ndarray:
        w = softmax(_terms(x, log_n, log_d), axis=0)
        return np.stack([w[2], w[0], -w[0] * log_n, w[1], -w[1] * log_d], axis=1)

    lower = [-np.inf, -np.inf, 0.0, -np.inf, 0.0]
    upper = [np.inf, np.inf, 4.0, np.inf, 4.0]
    best = None
    for start in _starts(n, d, loss):
        result = least_squares(
            residuals,
            start,
            jac=jacobian,
            loss="huber",
            f_scale=huber_delta,
            bounds=(lower, upper),
            method="trf",
        )
        if best is None or result.cost < best.cost:
            best = result
    e, a, alpha, b, beta = best.x
    res = residuals(best.x)
    return ScalingFit(
        E=float(np.exp(e)),
        A=float(np.exp(a)),
        alpha=float(alpha),
        B=float(np.exp(b)),
        beta=float(beta),
        log_residuals=tuple(float(r) for r in res),
        rmse_log=float(np.sqrt(np.mean(res**2))),
        num_points=len(n),
        method=(
            f"scipy.optimize.least_squares, Huber (delta {huber_delta:g}) on log L, "
            f"best of {_REFINED_STARTS} starts from an NNLS grid over (alpha, beta)"
        ),
    )
