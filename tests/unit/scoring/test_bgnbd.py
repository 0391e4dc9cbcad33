"""segflow's own BG/NBD + Gamma-Gamma (numpy inference, scipy fit) against lifetimes on CDNOW."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1
from segflow.scoring import bgnbd
from segflow.scoring.bgnbd_fit import fit_bgnbd, fit_gamma_gamma
from segflow.scoring.btyd import btyd_summary


@pytest.fixture(scope="module")
def cdnow_fits(cdnow_orders: pd.DataFrame) -> tuple[pd.DataFrame, object, object]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    summary = btyd_summary(cdnow_orders, "1997-09-30")
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return summary, bgf, ggf


def _columns(summary: pd.DataFrame) -> list[np.ndarray]:
    return [summary[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value")]


@pytest.mark.parametrize("horizon", [1.0, 30.0, 273.0, 3650.0])
def test_expected_purchases_equal_lifetimes_for_the_same_parameters(
    cdnow_fits: tuple, horizon: float
) -> None:
    summary, bgf, _ = cdnow_fits
    x, t_x, T, _ = _columns(summary)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"]
    ).to_numpy()
    ours = bgnbd.expected_purchases(dict(bgf.params_), x, t_x, T, horizon)
    np.testing.assert_allclose(ours, expected, rtol=1e-9)


def test_expected_order_value_equals_lifetimes(cdnow_fits: tuple) -> None:
    summary, _, ggf = cdnow_fits
    x, _, _, m = _columns(summary)
    expected = ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
    np.testing.assert_allclose(bgnbd.expected_order_value(dict(ggf.params_), x, m), expected, rtol=1e-12)
    population_mean = ggf.params_["p"] * ggf.params_["v"] / (ggf.params_["q"] - 1)
    no_repeat = bgnbd.expected_order_value(dict(ggf.params_), np.array([0.0]), np.array([0.0]))
    assert no_repeat[0] == pytest.approx(population_mean)


def test_maximum_likelihood_fits_agree_with_lifetimes(cdnow_fits: tuple) -> None:
    summary, bgf, ggf = cdnow_fits
    x, t_x, T, m = _columns(summary)
    ours_bg, ours_gg = fit_bgnbd(x, t_x, T), fit_gamma_gamma(x, m)
    assert ours_bg.pop("converged") and ours_gg.pop("converged")
    for name, value in bgf.params_.items():
        assert ours_bg[name] == pytest.approx(value, rel=1e-3), name
    for name, value in ggf.params_.items():
        assert ours_gg[name] == pytest.approx(value, rel=1e-3), name


def test_gamma_gamma_needs_repeat_customers() -> None:
    with pytest.raises(ValueError, match="repeat purchases"):
        fit_gamma_gamma(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 5.0]))


@pytest.mark.parametrize("a, b", [(1.63, -0.28), (0.5, 2.5), (3.2, 0.9)])
def test_hypergeometric_series_equals_scipy(a: float, b: float) -> None:
    c = np.array([0.9, 2.0, 5.5, 40.0, 300.0])[:, None]
    z = np.array([0.0, 0.3, 0.9, 0.99, 0.999])[None, :]
    reference = hyp2f1(a, b, c, z)
    known = np.isfinite(reference)  # scipy gives NaN for some large c with z near 1
    assert known.sum() >= 20
    np.testing.assert_allclose(bgnbd.hyp2f1_series(a, b, c, z)[known], reference[known], rtol=1e-10)


def test_dropout_prior_with_a_at_one_is_continuous() -> None:
    x, t_x, T = np.array([0.0, 3.0, 12.0]), np.array([0.0, 40.0, 200.0]), np.array([90.0, 120.0, 250.0])

    def purchases(a: float) -> np.ndarray:
        return bgnbd.expected_purchases({"r": 0.25, "alpha": 30.0, "a": a, "b": 2.0}, x, t_x, T, 365.0)

    assert np.all(np.isfinite(purchases(1.0)))
    np.testing.assert_allclose(purchases(1.0), purchases(1.0 + 1e-4), rtol=1e-3)
    np.testing.assert_allclose(purchases(1.0 - 1e-4), purchases(1.0 + 1e-4), rtol=1e-3)
