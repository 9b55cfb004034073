"""Pairwise win rates against a reference, and the length-controlled (LC) win rate, in numpy only.

AlpacaEval 2 compares a model's answer to each instruction with a reference answer (GPT-4
Turbo's) and reports the *win rate* (a win counts 1, a tie 0.5) and the *length-controlled*
win rate of Dubois et al. 2024 ("Length-Controlled AlpacaEval", arXiv 2404.04475): a logistic
regression of the judgement on the length difference, read off at a length difference of zero,
so a judge's taste for longer answers does not count as quality.

Here the judgements come from any judge (in :mod:`aries_lit.evaluation.evaluate`, a local
reward model scoring both answers). The official LC model also has a per-instruction
difficulty term fitted across many leaderboard models; with one model and one reference that
term is not identifiable, so this module fits the two-parameter GLM::

    logit P(win_i) = a + b * f(len_model_i - len_reference_i)
    f(d) = tanh(d / std(d))      (transform="tanh", AlpacaEval's choice)
         = d / std(d)            (transform="standardize")
    LC win rate = sigmoid(a)     (the prediction at zero length difference, f(0) = 0)

Ties enter as fractional targets (0.5), which the binomial quasi-likelihood handles as is.
The fit is Newton-Raphson / IRLS with step halving and an optional L2 penalty on ``b`` only
(it keeps ``b`` finite when the length difference separates wins from losses perfectly). The
standard error of the LC win rate is the delta method applied to a sandwich (robust, default)
or Fisher (model-based) covariance of ``a``, or a seeded nonparametric bootstrap.

``method="alpaca_eval"`` computes the LC win rate with the ``alpaca-eval`` package's own GLM
instead (its ``length_controlled_minimal`` formula, run offline by
:mod:`aries_lit.evaluation.alpaca_eval_lc`); this module's fit stays the default and the fallback,
and every result says which one made it (``method``).

The win rate's standard error is the plug-in binomial one, ``std(w) / sqrt(n)`` with the
population standard deviation (``sqrt(p (1 - p) / n)`` without ties). AlpacaEval's own
``standard_error`` is pandas ``sem()`` (``n - 1`` in the variance); the two differ by a factor
``sqrt(n / (n - 1))``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

LC_METHODS = ("builtin", "alpaca_eval")

__all__ = [
    "LC_METHODS",
    "LogisticFit",
    "judgements",
    "length_controlled_win_rate",
    "length_feature",
    "logistic_fit",
    "sigmoid",
    "win_rate",
]


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    """The logistic function, numerically stable for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out if out.ndim else float(out)


def judgements(
    model_scores: Sequence[float], reference_scores: Sequence[float], tie_tolerance: float = 0.0
) -> np.ndarray:
    """Per-instruction outcome of model vs reference from judge scores: 1 win, 0.5 tie, 0 loss.

    A tie is ``|model - reference| <= tie_tolerance``.
    """
    m = np.asarray(model_scores, dtype=np.float64)
    r = np.asarray(reference_scores, dtype=np.float64)
    if m.shape != r.shape:
        raise ValueError(f"model and reference scores differ in shape: {m.shape} vs {r.shape}")
    diff = m - r
    return np.where(np.abs(diff) <= tie_tolerance, 0.5, np.where(diff > 0, 1.0, 0.0))


def _check_wins(wins: Sequence[float]) -> np.ndarray:
    w = np.asarray(wins, dtype=np.float64).reshape(-1)
    if w.size and (np.any(~np.isfinite(w)) or np.any(w < 0) or np.any(w > 1)):
        raise ValueError("judgements must be numbers in [0, 1] (1 win, 0.5 tie, 0 loss)")
    return w


def win_rate(wins: Sequence[float]) -> dict[str, float | int]:
    """The mean judgement with its standard error ``std(w) / sqrt(n)`` (population std).

    Returns ``{"win_rate", "se", "n", "wins", "ties", "losses"}``; ``win_rate`` and ``se`` are
    fractions in [0, 1] (``nan`` when ``n == 0``).
    """
    w = _check_wins(wins)
    n = int(w.size)
    if n == 0:
        return {"win_rate": math.nan, "se": math.nan, "n": 0, "wins": 0, "ties": 0, "losses": 0}
    return {
        "win_rate": float(w.mean()),
        "se": float(w.std() / math.sqrt(n)),
        "n": n,
        "wins": int(np.sum(w == 1.0)),
        "ties": int(np.sum((w > 0.0) & (w < 1.0))),
        "losses": int(np.sum(w == 0.0)),
    }


def length_feature(
    model_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    transform: str = "tanh",
    scale: float | None = None,
) -> tuple[np.ndarray, float]:
    """``(f(d), scale)`` for ``d = model - reference`` lengths; ``f(0) = 0`` for every transform.

    ``transform``: ``"tanh"`` (``tanh(d / scale)``, AlpacaEval's), ``"standardize"``
    (``d / scale``) or ``"none"`` (``d``). ``scale`` defaults to the standard deviation of ``d``;
    when that is 0 (no length variation) the feature is all zeros.
    """
    d = np.asarray(model_lengths, dtype=np.float64) - np.asarray(reference_lengths, dtype=np.float64)
    if transform == "none":
        return d, 1.0
    if transform not in ("tanh", "standardize"):
        raise ValueError(f"unknown length transform '{transform}': use tanh, standardize or none")
    if scale is None:
        scale = float(d.std()) if d.size else 0.0
    if not scale > 0:
        return np.zeros_like(d), 0.0
    z = d / scale
    return (np.tanh(z) if transform == "tanh" else z), float(scale)


@dataclass
class LogisticFit:
    """Result of :func:`logistic_fit`: coefficients, covariances, the log-likelihood, convergence."""

    coef: np.ndarray
    cov_fisher: np.ndarray
    cov_sandwich: np.ndarray
    log_likelihood: float
    converged: bool
    iterations: int


def _loglik(X: np.ndarray, y: np.ndarray, beta: np.ndarray, weights: np.ndarray) -> float:
    eta = X @ beta
    # y * log(sigmoid(eta)) + (1 - y) * log(1 - sigmoid(eta)) = y * eta - log(1 + e^eta)
    return float(np.sum(weights * (y * eta - np.logaddexp(0.0, eta))))


def logistic_fit(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    l2: float | np.ndarray = 0.0,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LogisticFit:
    """Maximise the (penalised) binomial log-likelihood of ``y`` in [0, 1] on the design ``X``.

    Newton-Raphson (= IRLS) with step halving: ``beta <- beta + H^-1 g`` with
    ``g = X^T W (y - p) - L beta`` and ``H = X^T diag(W p (1-p)) X + L``, ``L = diag(l2)``
    (``l2`` a scalar for every column or one value per column; 0 for an unpenalised column).
    Fractional ``y`` (ties as 0.5) is the binomial quasi-likelihood.

    Covariances of ``beta``: ``cov_fisher = H^-1``; ``cov_sandwich = H^-1 (X^T diag(W^2 (y-p)^2) X) H^-1``
    (HC0, robust to a misspecified variance, e.g. ties). Singular matrices use the pseudo-inverse.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n, k = X.shape
    if y.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {y.shape[0]} values")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    penalty = np.broadcast_to(np.asarray(l2, dtype=np.float64), (k,)).copy()
    beta = np.zeros(k)

    def objective(b: np.ndarray) -> float:
        return _loglik(X, y, b, w) - 0.5 * float(np.sum(penalty * b * b))

    current = objective(beta)
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported below
        p = sigmoid(X @ beta)
        grad = X.T @ (w * (y - p)) - penalty * beta
        hess = (X * (w * p * (1.0 - p))[:, None]).T @ X + np.diag(penalty)
        step = np.linalg.pinv(hess) @ grad
        t = 1.0
        while True:
            candidate = beta + t * step
            value = objective(candidate)
            if value >= current - 1e-12 or t < 1e-8:
                break
            t *= 0.5
        beta, previous, current = candidate, current, value
        if np.max(np.abs(t * step)) < tol or abs(current - previous) < tol * max(1.0, abs(current)):
            converged = True
            break
    p = sigmoid(X @ beta)
    hess = (X * (w * p * (1.0 - p))[:, None]).T @ X + np.diag(penalty)
    bread = np.linalg.pinv(hess)
    resid = w * (y - p)
    meat = (X * (resid**2)[:, None]).T @ X
    return LogisticFit(
        coef=beta,
        cov_fisher=bread,
        cov_sandwich=bread @ meat @ bread,
        log_likelihood=_loglik(X, y, beta, w),
        converged=converged,
        iterations=iterations,
    )


def _lc_point(w: np.ndarray, feature: np.ndarray, l2: float) -> tuple[float, LogisticFit | None]:
    """LC win rate and the fit; degenerate judgements (all equal) give the raw rate and no fit."""
    if w.size == 0:
        return math.nan, None
    if np.all(w == w[0]):
        return float(w[0]), None  # all wins / all losses / all ties: nothing to adjust
    use_length = bool(np.any(feature != 0))
    X = np.column_stack([np.ones_like(w), feature]) if use_length else np.ones((w.size, 1))
    fit = logistic_fit(X, w, l2=np.array([0.0, l2]) if use_length else 0.0)
    return float(sigmoid(fit.coef[0])), fit


@dataclass
class LengthControlled:
    lc_win_rate: float
    se: float
    intercept: float
    length_coef: float
    length_scale: float
    transform: str
    se_method: str
    converged: bool
    n: int
    method: str = "builtin"


def length_controlled_win_rate(
    wins: Sequence[float],
    model_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    transform: str = "tanh",
    l2: float = 0.01,
    se_method: str = "sandwich",
    n_bootstrap: int = 1000,
    seed: int = 0,
    method: str = "builtin",
) -> dict[str, float | int | str | bool | None]:
    """The length-controlled win rate ``sigmoid(a)`` of ``logit P(win) = a + b f(len diff)``.

    Args:
        wins: judgements in [0, 1] (1 win, 0.5 tie, 0 loss), one per instruction.
        model_lengths, reference_lengths: answer lengths (AlpacaEval uses characters).
        transform: length feature, see :func:`length_feature`.
        l2: L2 penalty on ``b`` (not on ``a``); keeps ``b`` finite under perfect separation.
        se_method: ``"sandwich"`` (delta method on the robust covariance of ``a``),
            ``"fisher"`` (delta method on the inverse Fisher information) or ``"bootstrap"``
            (std of the LC win rate over ``n_bootstrap`` resamples of instructions, RNG ``seed``;
            the length scale is kept fixed).
        method: ``"builtin"`` (this module's fit) or ``"alpaca_eval"`` (the ``alpaca-eval``
            0.6.6 package's ``length_controlled_minimal`` GLM, offline; needs
            ``pip install alpaca-eval==0.6.6`` and ``transform="tanh"``; see
            :func:`aries_lit.evaluation.alpaca_eval_lc.alpaca_eval_lc_win_rate` for its keys).

    Returns ``{"lc_win_rate", "se", "intercept", "length_coef", "length_scale", "transform",
    "se_method", "converged", "n", "method"}``. All judgements equal (e.g. all wins) gives that value
    with ``se = 0``.
    """
    w = _check_wins(wins)
    if se_method not in ("sandwich", "fisher", "bootstrap"):
        raise ValueError(f"unknown se_method '{se_method}': use sandwich, fisher or bootstrap")
    if method not in LC_METHODS:
        raise ValueError(f"unknown LC method '{method}': use builtin or alpaca_eval")
    if method == "alpaca_eval":
        if transform != "tanh":
            raise ValueError(f"the alpaca_eval LC GLM uses transform 'tanh' only, got '{transform}'")
        from aries_lit.evaluation.alpaca_eval_lc import alpaca_eval_lc_win_rate

        options = {"se_method": se_method, "n_bootstrap": n_bootstrap, "seed": seed, "l2": l2}
        builtin = functools.partial(length_controlled_win_rate, method="builtin")
        return alpaca_eval_lc_win_rate(w, model_lengths, reference_lengths, builtin=builtin, **options)
    feature, scale = length_feature(model_lengths, reference_lengths, transform)
    if feature.shape != w.shape:
        raise ValueError(f"{w.size} judgements but {feature.size} length differences")
    lc, fit = _lc_point(w, feature, l2)
    if fit is not None:
        intercept = float(fit.coef[0])
    elif w.size == 0:
        intercept = math.nan
    else:  # all judgements equal: the logit of that value (infinite for all wins / all losses)
        intercept = math.log(lc / (1.0 - lc)) if 0.0 < lc < 1.0 else math.copysign(math.inf, lc - 0.5)
    coef = float(fit.coef[1]) if fit is not None and fit.coef.size > 1 else 0.0
    if fit is None:
        se = math.nan if w.size == 0 else 0.0
    elif se_method == "bootstrap":
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n_bootstrap):
            idx = rng.integers(0, w.size, w.size)
            values.append(_lc_point(w[idx], feature[idx], l2)[0])
        se = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    else:
        cov = fit.cov_sandwich if se_method == "sandwich" else fit.cov_fisher
        se = float(lc * (1.0 - lc) * math.sqrt(max(cov[0, 0], 0.0)))  # d sigmoid(a) / da = p (1 - p)
    return asdict(
        LengthControlled(
            lc_win_rate=lc,
            se=se,
            intercept=intercept,
            length_coef=coef,
            length_scale=scale,
            transform=transform,
            se_method=se_method,
            converged=True if fit is None else fit.converged,
            n=int(w.size),
        )
    )
