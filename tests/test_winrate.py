"""Win rate, length-controlled win rate and their standard errors on synthetic judgements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aries_lit.evaluation.winrate import (
    judgements,
    length_controlled_win_rate,
    length_feature,
    logistic_fit,
    sigmoid,
    win_rate,
)


def _lengths(rng: np.random.Generator, n: int, mean_diff: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    ref = rng.integers(500, 1500, n).astype(float)
    return ref + rng.normal(mean_diff, 400.0, n), ref


def test_all_wins_and_all_ties():
    lengths = np.arange(10.0)
    wins = win_rate([1.0] * 10)
    assert wins["win_rate"] == 1.0 and wins["se"] == 0.0 and wins["wins"] == 10
    lc = length_controlled_win_rate([1.0] * 10, lengths, lengths[::-1])
    assert lc["lc_win_rate"] == 1.0 and lc["se"] == 0.0 and lc["intercept"] == math.inf
    ties = win_rate([0.5] * 8)
    assert ties["win_rate"] == 0.5 and ties["se"] == 0.0 and ties["ties"] == 8
    lc = length_controlled_win_rate([0.5] * 8, np.arange(8.0), np.zeros(8))
    assert lc["lc_win_rate"] == 0.5 and lc["se"] == 0.0 and lc["intercept"] == 0.0
    assert length_controlled_win_rate([0.0] * 5, np.ones(5), np.zeros(5))["lc_win_rate"] == 0.0


def test_binomial_standard_error():
    wins = [1.0] * 30 + [0.0] * 70
    out = win_rate(wins)
    assert out["win_rate"] == pytest.approx(0.3)
    assert out["se"] == pytest.approx(math.sqrt(0.3 * 0.7 / 100))
    assert (out["wins"], out["ties"], out["losses"], out["n"]) == (30, 0, 70, 100)
    # Without length variation the LC model is intercept-only: LC = raw, and both delta-method
    # standard errors equal the binomial one exactly.
    same = np.full(100, 500.0)
    for method in ("sandwich", "fisher"):
        lc = length_controlled_win_rate(wins, same, same, se_method=method)
        assert lc["lc_win_rate"] == pytest.approx(0.3, abs=1e-9)
        assert lc["se"] == pytest.approx(math.sqrt(0.3 * 0.7 / 100), rel=1e-6)
        assert lc["length_coef"] == 0.0


def test_ties_count_half():
    out = win_rate([1.0, 0.5, 0.5, 0.0])
    assert out["win_rate"] == 0.5 and out["ties"] == 2
    assert out["se"] == pytest.approx(np.std([1, 0.5, 0.5, 0]) / 2)


def test_judgements_from_scores():
    w = judgements([1.0, 2.0, 3.0, 3.05], [2.0, 2.0, 1.0, 3.0], tie_tolerance=0.1)
    assert w.tolist() == [0.0, 0.5, 1.0, 0.5]
    assert judgements([1.0], [1.0]).tolist() == [0.5]
    with pytest.raises(ValueError, match="shape"):
        judgements([1.0, 2.0], [1.0])


def test_lc_equals_raw_when_wins_ignore_length():
    rng = np.random.default_rng(0)
    n = 4000
    model_len, ref_len = _lengths(rng, n)
    wins = (rng.random(n) < 0.7).astype(float)
    raw = win_rate(wins)
    lc = length_controlled_win_rate(wins, model_len, ref_len)
    assert lc["converged"]
    assert lc["lc_win_rate"] == pytest.approx(raw["win_rate"], abs=0.02)
    assert abs(lc["length_coef"]) < 0.3
    assert 0.8 * raw["se"] < lc["se"] < 2.0 * raw["se"]


def test_lc_is_half_when_wins_are_driven_by_length():
    rng = np.random.default_rng(1)
    n = 4000
    model_len, ref_len = _lengths(rng, n, mean_diff=300.0)  # the model is usually longer
    feature, _ = length_feature(model_len, ref_len)
    wins = (rng.random(n) < sigmoid(4.0 * feature)).astype(float)  # length alone decides
    assert win_rate(wins)["win_rate"] > 0.65
    lc = length_controlled_win_rate(wins, model_len, ref_len)
    assert lc["lc_win_rate"] == pytest.approx(0.5, abs=0.04)
    assert lc["length_coef"] == pytest.approx(4.0, abs=0.5)
    # Perfect separation (the longer answer always wins): the penalty keeps the fit finite.
    separated = (model_len > ref_len).astype(float)
    lc = length_controlled_win_rate(separated, model_len, ref_len)
    assert lc["converged"] and math.isfinite(lc["length_coef"])
    assert lc["lc_win_rate"] == pytest.approx(0.5, abs=0.05)


def test_logistic_fit_matches_grid_search():
    rng = np.random.default_rng(2)
    n = 60
    x = rng.normal(size=n)
    y = (rng.random(n) < sigmoid(0.4 + 1.1 * x)).astype(float)
    y[:6] = 0.5  # ties as fractional targets
    fit = logistic_fit(np.column_stack([np.ones(n), x]), y)
    grid = np.arange(-3.0, 3.0001, 0.01)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    eta = a[..., None] + b[..., None] * x  # (grid, grid, n)
    loglik = np.sum(y * eta - np.logaddexp(0.0, eta), axis=-1)
    i, j = np.unravel_index(np.argmax(loglik), loglik.shape)
    assert fit.converged
    assert fit.coef[0] == pytest.approx(grid[i], abs=0.011)
    assert fit.coef[1] == pytest.approx(grid[j], abs=0.011)
    assert fit.log_likelihood >= loglik.max() - 1e-9


def test_fisher_covariance_matches_numerical_hessian():
    rng = np.random.default_rng(3)
    n = 200
    x = rng.normal(size=n)
    y = (rng.random(n) < sigmoid(-0.3 + 0.8 * x)).astype(float)
    X = np.column_stack([np.ones(n), x])
    fit = logistic_fit(X, y)

    def loglik(beta):
        eta = X @ beta
        return np.sum(y * eta - np.logaddexp(0.0, eta))

    h = 1e-4
    hess = np.zeros((2, 2))
    for r in range(2):
        for c in range(2):
            e_r, e_c = np.eye(2)[r] * h, np.eye(2)[c] * h
            hess[r, c] = (
                loglik(fit.coef + e_r + e_c)
                - loglik(fit.coef + e_r - e_c)
                - loglik(fit.coef - e_r + e_c)
                + loglik(fit.coef - e_r - e_c)
            ) / (4 * h * h)
    np.testing.assert_allclose(fit.cov_fisher, np.linalg.inv(-hess), rtol=1e-3)


def test_bootstrap_se_is_seeded_and_close_to_delta_method():
    rng = np.random.default_rng(4)
    n = 400
    model_len, ref_len = _lengths(rng, n)
    wins = (rng.random(n) < 0.6).astype(float)
    a = length_controlled_win_rate(wins, model_len, ref_len, se_method="bootstrap", n_bootstrap=200, seed=7)
    b = length_controlled_win_rate(wins, model_len, ref_len, se_method="bootstrap", n_bootstrap=200, seed=7)
    delta = length_controlled_win_rate(wins, model_len, ref_len)
    assert a["se"] == b["se"]
    assert a["se"] == pytest.approx(delta["se"], rel=0.3)
    assert a["lc_win_rate"] == delta["lc_win_rate"]


def test_length_feature_transforms():
    f, scale = length_feature([3.0, 1.0, 2.0], [2.0, 2.0, 2.0])
    d = np.array([1.0, -1.0, 0.0])
    assert scale == pytest.approx(d.std())
    np.testing.assert_allclose(f, np.tanh(d / d.std()))
    f, _ = length_feature([3.0, 1.0, 2.0], [2.0, 2.0, 2.0], transform="standardize")
    np.testing.assert_allclose(f, d / d.std())
    f, scale = length_feature([5.0, 5.0], [1.0, 1.0])
    assert scale == 0.0 and f.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="transform"):
        length_feature([1.0], [1.0], transform="log")


def test_bad_input():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        win_rate([2.0])
    with pytest.raises(ValueError, match="judgements"):
        length_controlled_win_rate([1.0, 0.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="se_method"):
        length_controlled_win_rate([1.0, 0.0], [1.0, 2.0], [1.0, 1.0], se_method="jackknife")
    empty = win_rate([])
    assert empty["n"] == 0 and math.isnan(empty["win_rate"])


# --- AlpacaEval's own LC GLM (method="alpaca_eval") ------------------------------------------------


def _alpaca_eval_available() -> bool:
    try:
        from aries_lit.evaluation.alpaca_eval_lc import alpaca_eval_glm

        alpaca_eval_glm()
    except (ImportError, RuntimeError):
        return False
    return True


needs_alpaca_eval = pytest.mark.skipif(
    not _alpaca_eval_available(),
    reason="alpaca-eval 0.6.6 not installed (pip install -e '.[lc-winrate]')",
)


def _fixed_annotations(a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """805 judgements on the shipped AlpacaEval reference lengths, from the benchmark's synthetic model."""
    import gzip
    import json

    from aries_lit.assets import asset_path

    with gzip.open(asset_path("alpaca_eval/gpt4_1106_preview_outputs.json.gz"), "rt") as f:
        ref = np.array([len(r["output"]) for r in json.load(f)], dtype=np.int64)
    rng = np.random.default_rng(seed)
    model = np.maximum(1, np.rint(ref * np.exp(rng.normal(0.3, 0.5, ref.size)))).astype(np.int64)
    d = (model - ref).astype(float)
    wins = (rng.random(ref.size) < sigmoid(a + b * np.tanh(d / d.std()))).astype(float)
    wins[rng.random(ref.size) < 0.05] = 0.5
    return wins, model, ref


@needs_alpaca_eval
@pytest.mark.parametrize(("a", "b", "seed"), [(-1.5, 1.0, 1), (-0.5, 2.0, 5), (0.5, 1.0, 7), (0.5, 0.0, 6)])
def test_alpaca_eval_lc_agrees_with_builtin(a: float, b: float, seed: int):
    """Same judgements, both GLMs: within 1 point at n = 805 (measured: mean 0.14, max 0.77)."""
    import sklearn

    wins, model, ref = _fixed_annotations(a, b, seed)
    ours = length_controlled_win_rate(wins, model, ref)
    theirs = length_controlled_win_rate(wins, model, ref, method="alpaca_eval")
    assert ours["method"] == "builtin"
    assert theirs["method"] == "alpaca_eval" and theirs["fallback_reason"] is None
    assert theirs["glm"] == "length_controlled_minimal"
    assert theirs["lc_win_rate"] == pytest.approx(ours["lc_win_rate"], abs=0.01)
    assert theirs["lc_win_rate"] == pytest.approx(float(sigmoid(theirs["intercept"])), abs=1e-9)
    if b > 0:  # L1 keeps the length term when length matters; same sign convention as ours
        assert theirs["length_coef"] == pytest.approx(ours["length_coef"], abs=0.1)
    assert theirs["se"] == ours["se"] and theirs["se_from"] == "builtin fit"
    assert not sklearn.get_config()["enable_metadata_routing"]  # the package's global switch is undone


@needs_alpaca_eval
def test_alpaca_eval_lc_falls_back_and_refuses():
    out = length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0], method="alpaca_eval")
    assert out["method"] == "builtin" and "fewer than 5" in out["fallback_reason"]
    out = length_controlled_win_rate([1.0] * 8, np.arange(8.0), np.ones(8), method="alpaca_eval")
    assert out["method"] == "builtin" and out["lc_win_rate"] == 1.0
    assert "all judgements" in out["fallback_reason"]
    with pytest.raises(ValueError, match="whole numbers"):
        length_controlled_win_rate([1.0, 0.0] * 3, [1.5] * 6, [1.0] * 6, method="alpaca_eval")
    with pytest.raises(ValueError, match="tanh"):
        length_controlled_win_rate([1.0, 0.0] * 3, [2] * 6, [1] * 6, method="alpaca_eval", transform="none")


@needs_alpaca_eval
def test_alpaca_eval_glm_needing_hub_data_is_refused(monkeypatch):
    from alpaca_eval.metrics import glm_winrate

    from aries_lit.evaluation.alpaca_eval_lc import GLM_NAME, alpaca_eval_glm

    full = glm_winrate.GLM_INFO["length_controlled_v1"]
    monkeypatch.setitem(glm_winrate.GLM_INFO, GLM_NAME, full)
    with pytest.raises(RuntimeError, match="hub-free"):
        alpaca_eval_glm()


def test_alpaca_eval_lc_missing_package_names_the_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "alpaca_eval", None)
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics", None)
    with pytest.raises(ImportError, match=r"pip install alpaca-eval==0\.6\.6"):
        length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0], method="alpaca_eval")
    with pytest.raises(ValueError, match="LC method"):
        length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0], method="official")
    assert length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0])["method"] == "builtin"
