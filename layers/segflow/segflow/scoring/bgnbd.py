"""BG/NBD purchases and Gamma-Gamma order value, conditional on a customer's history (numpy only).

Inputs are the buy-till-you-die summary in days (btyd.py): x repeat purchase days, t_x days from the
first to the last purchase, T days since the first purchase, m mean value of the repeat purchases.
BG/NBD (Fader, Hardie & Lee 2005): purchases follow a Poisson process whose rate is Gamma(r, alpha)
across customers; after each purchase a customer drops out with probability p ~ Beta(a, b).
Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): order values are gamma around a customer mean
whose prior is the population's, so few orders shrink the mean towards the population mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SERIES_TOLERANCE = 1e-15
MAX_SERIES_TERMS = 2_000_000
A_NEAR_ONE = 1e-7  # the closed form divides by a - 1; a this close to 1 is moved to 1 +- A_NEAR_ONE


def hyp2f1_series(a: float, b: float, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gauss hypergeometric 2F1(a, b; c; z) elementwise for 0 <= z < 1 and c > 0, by its power series.

    Used with small a and b and c >= a + b - 1, where the terms shrink from the start (about like
    z^n). Rows drop out of the loop once their next term is negligible."""
    c, z = np.broadcast_arrays(np.asarray(c, dtype=np.float64), np.asarray(z, dtype=np.float64))
    total = np.ones(c.shape)
    term = np.ones(c.shape)
    active = np.arange(c.size)
    flat_total, flat_term, flat_c, flat_z = total.reshape(-1), term.reshape(-1), c.reshape(-1), z.reshape(-1)
    for n in range(MAX_SERIES_TERMS):
        if active.size == 0:
            return total
        step = flat_term[active] * ((a + n) * (b + n) / ((flat_c[active] + n) * (n + 1)) * flat_z[active])
        flat_term[active] = step
        flat_total[active] += step
        active = active[np.abs(step) > SERIES_TOLERANCE * np.abs(flat_total[active])]
    raise ArithmeticError("2F1 series did not converge (z too close to 1)")


def expected_purchases(
    params: Mapping[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] under BG/NBD (equation 10 of the paper).

    The paper's 2F1(r + x, b + x; a + b + x - 1; z) is rewritten with Euler's transformation as
    (1 - z)^(a - 1 - r - x) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z): parameters that do not grow
    with x, so the series converges quickly, and the power cancels against the paper's
    ((alpha + T) / (alpha + T + t))^(r + x) = (1 - z)^(r + x). The series depends on (x, T) only and
    is summed once per distinct pair."""
    r, alpha, a, b = (float(params[k]) for k in ("r", "alpha", "a", "b"))
    if abs(a - 1.0) < A_NEAR_ONE:
        a = 1.0 + np.copysign(A_NEAR_ONE, a - 1.0)
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    pairs, position = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
    one_minus_z = (alpha + pairs[:, 1]) / (alpha + pairs[:, 1] + t)
    series = hyp2f1_series(a + b - 1.0 - r, a - 1.0, a + b + pairs[:, 0] - 1.0, 1.0 - one_minus_z)
    alive_purchases = (a + b + pairs[:, 0] - 1.0) / (a - 1.0) * (1.0 - series * one_minus_z ** (a - 1.0))
    numerator = alive_purchases[position.reshape(-1)]
    repeat = x > 0
    odds_dropped = np.zeros_like(x)
    odds_dropped[repeat] = (
        a / (b + x[repeat] - 1.0) * ((alpha + T[repeat]) / (alpha + t_x[repeat])) ** (r + x[repeat])
    )
    return numerator / (1.0 + odds_dropped)


def expected_order_value(params: Mapping[str, float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gamma-Gamma posterior mean order value: the observed repeat mean m weighted by x against the
    population mean p v / (q - 1); the population mean for customers without repeat purchases."""
    p, q, v = (float(params[k]) for k in ("p", "q", "v"))
    x = np.asarray(x, dtype=np.float64)
    m = np.where(x > 0, np.asarray(m, dtype=np.float64), 0.0)
    return p * (v + x * m) / (p * x + q - 1.0)


def expected_spend(
    model: Mapping[str, Mapping[str, float]],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    horizon_days: float,
) -> np.ndarray:
    """Expected spend over the horizon: BG/NBD purchases x Gamma-Gamma value per purchase."""
    return expected_purchases(model["bgnbd"], x, t_x, T, horizon_days) * expected_order_value(
        model["gamma_gamma"], x, m
    )
