"""Fit BG/NBD and Gamma-Gamma by maximum likelihood (training side, scipy); see bgnbd.py for the models.

Parameters are optimised on the log scale (all must be positive) with L-BFGS-B and numerical
gradients. Customers with the same summary share one likelihood term weighted by their count, which
keeps a fit to well under a second for tens of thousands of customers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

LOG_BOUNDS = (-12.0, 12.0)


def bgnbd_log_likelihood(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of (x, t_x, T) for params (r, alpha, a, b)."""
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
    alive = gammaln(b + x) - gammaln(a + b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    xr = x[repeat]
    dropped[repeat] = (
        np.log(a) + gammaln(b + xr - 1.0) - gammaln(a + b + xr) - (r + xr) * np.log(alpha + t_x[repeat])
    )
    return common + np.logaddexp(alive, dropped)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the mean m of x repeat order values for params (p, q, v)."""
    p, q, v = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


def _distinct(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the columns and how often each occurs."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, j] for j in range(rows.shape[1])], counts / counts.sum()


def _maximise(
    log_likelihood: Callable[[np.ndarray], np.ndarray], weights: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, bool]:
    def loss(log_params: np.ndarray) -> float:
        return -float(weights @ log_likelihood(np.exp(log_params)))

    tight = {"ftol": 1e-13, "gtol": 1e-9}  # the optimum, not just near it (agrees with lifetimes)
    result = minimize(loss, start, method="L-BFGS-B", bounds=[LOG_BOUNDS] * len(start), options=tight)
    return np.exp(result.x), bool(result.success)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> dict[str, float]:
    """r, alpha, a, b maximising the BG/NBD likelihood, and whether the optimiser converged."""
    (x, t_x, T), weights = _distinct(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    start = np.log([1.0, max(float(weights @ T), 1.0), 1.0, 1.0])
    params, converged = _maximise(lambda p: bgnbd_log_likelihood(p, x, t_x, T), weights, start)
    return {**dict(zip(("r", "alpha", "a", "b"), map(float, params))), "converged": converged}


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """p, q, v maximising the Gamma-Gamma likelihood over customers with repeat purchases of positive
    value (the model is undefined for the others), and whether the optimiser converged."""
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    usable = (x > 0) & (m > 0)
    if usable.sum() < 3:
        raise ValueError("Gamma-Gamma needs at least three customers with repeat purchases")
    (xu, mu), weights = _distinct(x[usable], m[usable])
    start = np.log([1.0, 2.0, max(float(weights @ mu), 1e-3)])
    params, converged = _maximise(lambda p: gamma_gamma_log_likelihood(p, xu, mu), weights, start)
    return {**dict(zip(("p", "q", "v"), map(float, params))), "converged": converged}
