"""Fit the rate-dropout spend regression (training side, scipy).

Loss: Tweedie deviance (power p in [1, 2); p = 1 is Poisson) of observed spend in each training window
against mu = exp(a0 + x.a) * (1 - exp(-h w)) / h with h = exp(b0 + x.b), plus an L2 penalty on a and b.
Tweedie losses need only the mean to be right and accept exact zeros, which suits spend: most
customers spend nothing in a window and a few spend a lot; p > 1 stops those few from dominating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from segflow.scoring.value_inference import HAZARD_CLIP, expected_spend


@dataclass(frozen=True)
class RateDropoutFit:
    rate_intercept: float
    rate_coef: np.ndarray
    hazard_intercept: float
    hazard_coef: np.ndarray
    converged: bool
    iterations: int

    def predict(self, z: np.ndarray, window_days: np.ndarray | float) -> np.ndarray:
        rate_eta = self.rate_intercept + z @ self.rate_coef
        hazard = np.exp(np.clip(self.hazard_intercept + z @ self.hazard_coef, *HAZARD_CLIP))
        return expected_spend(rate_eta, hazard, window_days)


def tweedie_loss(mu: np.ndarray, y: np.ndarray, power: float) -> np.ndarray:
    """Tweedie negative log-likelihood per row, up to terms that do not depend on mu."""
    if power == 1.0:
        return mu - y * np.log(mu)
    return mu ** (2 - power) / (2 - power) - y * mu ** (1 - power) / (1 - power)


def loss_and_gradient(
    theta: np.ndarray, z: np.ndarray, window: np.ndarray, spend: np.ndarray, alpha: float, power: float = 1.0
) -> tuple[float, np.ndarray]:
    """Mean Tweedie loss + alpha/2 |slopes|^2 and its gradient."""
    n, k = z.shape
    rate_eta = theta[0] + z @ theta[1 : k + 1]
    hazard_eta = np.clip(theta[k + 1] + z @ theta[k + 2 :], *HAZARD_CLIP)
    hw = np.exp(hazard_eta) * window
    log_mu = rate_eta + np.log(-np.expm1(-hw)) - hazard_eta
    mu = np.exp(log_mu)
    residual = np.exp((1 - power) * log_mu) * (mu - spend) / n  # d loss / d log mu
    # d log mu / d hazard_eta = hw / (e^hw - 1) - 1, which tends to -hw/2 for small hw.
    small = hw < 1e-8
    with np.errstate(over="ignore"):  # expm1 overflows to inf for huge hw, giving the right limit -1
        dlog_hazard = np.where(small, -hw / 2, hw / np.expm1(np.where(small, 1.0, hw)) - 1.0)
    weighted = residual * dlog_hazard
    slopes = np.concatenate([theta[1 : k + 1], theta[k + 2 :]])
    loss = float(np.mean(tweedie_loss(mu, spend, power)) + 0.5 * alpha * slopes @ slopes)
    gradient = np.concatenate(
        [
            [residual.sum()],
            z.T @ residual + alpha * theta[1 : k + 1],
            [weighted.sum()],
            z.T @ weighted + alpha * theta[k + 2 :],
        ]
    )
    return loss, gradient


def fit_rate_dropout(
    z: np.ndarray, window: np.ndarray, spend: np.ndarray, alpha: float, power: float = 1.0
) -> RateDropoutFit:
    k = z.shape[1]
    theta = np.zeros(2 * k + 2)
    theta[0] = np.log(max(spend.sum(), 1e-9) / window.sum())  # population spend per day
    theta[k + 1] = np.log(1.0 / 365.0)  # start from "active for about a year"
    result = minimize(
        loss_and_gradient,
        theta,
        args=(z, window, spend, alpha, power),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5_000, "maxfun": 10_000},
    )
    x = result.x
    return RateDropoutFit(
        rate_intercept=float(x[0]),
        rate_coef=x[1 : k + 1],
        hazard_intercept=float(x[k + 1]),
        hazard_coef=x[k + 2 :],
        converged=bool(result.success),
        iterations=int(result.nit),
    )
