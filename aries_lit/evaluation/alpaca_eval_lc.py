"""AlpacaEval's own length-controlled win rate (``alpaca-eval`` 0.6.6), run offline on local judgements.

``alpaca_eval.metrics.glm_winrate.get_length_controlled_winrate`` fits AlpacaEval's GLM with
scikit-learn (an L1-penalised logistic regression whose penalty is picked by 5-fold cross-validation
over instructions, ties as fractional targets) and reports the mean prediction at zero length
difference. Its featurizer ``_get_featurized_data`` always downloads ``df_gamed.csv`` from the
``tatsu-lab/alpaca_eval`` dataset on the Hugging Face hub, for two things only:

* ``instruction_difficulty`` per AlpacaEval instruction index (fitted across leaderboard models with
  the GPT-4 Turbo annotator), used when the GLM formula names ``instruction_difficulty``;
* annotations of two length-gamed GPT-4 variants, used only when ``regularize_to_baseline_lambda``
  is set.

The ``length_controlled_minimal`` GLM (formula ``np.tanh(std_delta_len) + not_gamed_baseline - 1``,
no regularisation to the gamed baselines) uses neither, so this module runs it with the download
replaced by a local stub of ``df_gamed.csv`` whose ``instruction_difficulty`` is all NaN (one row
per instruction, no gamed annotations). Any other use of the hub (another file), a formula naming
``instruction_difficulty`` or a regularisation weight is refused, so a different package version
cannot silently fit on the stub. The full ``length_controlled_v1`` GLM cannot run offline:
``df_gamed.csv`` ships in neither the wheel nor the sdist of 0.6.6 (nor in the package's git
repository), and AlpacaEval's data is CC BY-NC 4.0 (see docs/evaluation.md).

Install: ``pip install alpaca-eval==0.6.6`` (or ``pip install -e '.[lc-winrate]'``).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np

__all__ = [
    "ALPACA_EVAL_VERSION",
    "GLM_NAME",
    "MIN_INSTRUCTIONS",
    "alpaca_eval_glm",
    "alpaca_eval_lc_win_rate",
]

ALPACA_EVAL_VERSION = "0.6.6"
GLM_NAME = "length_controlled_minimal"
MIN_INSTRUCTIONS = 5  # the GLM's GroupKFold(n_splits=5) needs one instruction per fold
INSTALL_HINT = "pip install alpaca-eval==0.6.6 (or the lc-winrate extra: pip install -e '.[lc-winrate]')"
_LENGTH_COLUMN = "np.tanh(std_delta_len)"
_BASELINE_COLUMN = "not_gamed_baseline.astype(float)"


def alpaca_eval_glm() -> ModuleType:
    """``alpaca_eval.metrics.glm_winrate``, checked to hold a minimal GLM that needs no hub data."""
    try:
        from alpaca_eval.metrics import glm_winrate
    except ImportError as err:
        message = f"lc method 'alpaca_eval' needs the alpaca-eval package: {INSTALL_HINT} ({err})"
        raise ImportError(message) from None
    info = getattr(glm_winrate, "GLM_INFO", {}).get(GLM_NAME)
    if (
        info is None
        or "instruction_difficulty" in info["formula"]
        or info.get("regularize_to_baseline_lambda")
        or not hasattr(glm_winrate, "hf_hub_download")
    ):
        raise RuntimeError(
            f"alpaca_eval's '{GLM_NAME}' GLM is not the hub-free one of alpaca-eval {ALPACA_EVAL_VERSION} "
            f"(GLM_INFO: {info}); install {ALPACA_EVAL_VERSION}"
        )
    return glm_winrate


def _whole_lengths(lengths: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(lengths, dtype=np.float64).reshape(-1)
    whole = np.rint(x)
    if np.any(~np.isfinite(x)) or np.any(x < 0) or np.any(np.abs(x - whole) > 1e-9):
        raise ValueError(f"alpaca_eval measures lengths in characters: {name} must be whole numbers >= 0")
    return whole.astype(np.int64)


def _fit_once(glm: ModuleType, w: np.ndarray, model_len: np.ndarray, ref_len: np.ndarray) -> dict[str, Any]:
    """One call of the package's ``get_length_controlled_winrate`` with the hub download stubbed out."""
    import pandas as pd
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    n = int(w.size)
    with tempfile.TemporaryDirectory(prefix="aries_lit_alpaca_eval_") as tmp:
        stub = Path(tmp) / "df_gamed.csv"
        # One row per instruction index and no gamed-model annotation: the minimal GLM reads only the
        # instruction_difficulty column (into a feature its formula does not name); a formula that
        # named it would stop on NaN features in scikit-learn.
        pd.DataFrame({"model": "none", "index": np.arange(n), "instruction_difficulty": np.nan}).to_csv(
            stub, index=False
        )

        def offline_download(*args: Any, **kwargs: Any) -> str:
            if kwargs.get("filename") != "df_gamed.csv" or kwargs.get("repo_id") != "tatsu-lab/alpaca_eval":
                raise RuntimeError(f"alpaca_eval asked the hub for {args} {kwargs}: refused offline")
            return str(stub)

        # AlpacaEval's annotation format: output_1 / generator_1 is the baseline (our reference),
        # preference 1 = baseline wins, 2 = model wins, 1.5 = tie; lengths are len(output).
        annotations = pd.DataFrame(
            {
                "index": np.arange(n),
                "output_1": ["x" * int(k) for k in ref_len],
                "output_2": ["x" * int(k) for k in model_len],
                "generator_1": "reference",
                "generator_2": "model",
                "annotator": "aries_lit_judge",
                "preference": 1.0 + w,
            }
        )
        with (
            warnings.catch_warnings(record=True) as caught,
            sklearn.config_context(),  # the package turns on metadata routing globally; restore it
            mock.patch.object(glm, "hf_hub_download", offline_download),
        ):
            warnings.simplefilter("ignore", FutureWarning)  # scikit-learn deprecations inside the package
            warnings.simplefilter("always", ConvergenceWarning)
            out = glm.get_length_controlled_winrate(
                annotations, glm_name=GLM_NAME, save_weights_dir=tmp, is_warn_extreme_changes=False
            )
        weights = pd.read_csv(Path(tmp) / GLM_NAME / "baseline_reference.csv", index_col=0).loc["model"]
    converged = not any(issubclass(c.category, ConvergenceWarning) for c in caught)
    return {
        "lc_win_rate": float(out["length_controlled_winrate"]) / 100.0,
        "intercept": float(weights[_BASELINE_COLUMN]),
        # the package's length difference is reference - model: flip it to ours (model - reference)
        "length_coef": -float(weights[_LENGTH_COLUMN]),
        "converged": converged,
    }


def alpaca_eval_lc_win_rate(
    wins: np.ndarray,
    model_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    builtin: Callable[..., dict[str, Any]],
    se_method: str = "sandwich",
    n_bootstrap: int = 200,
    seed: int = 0,
    l2: float = 0.01,
) -> dict[str, Any]:
    """AlpacaEval 0.6.6's LC win rate (``length_controlled_minimal`` GLM) of judgements in [0, 1].

    Same keys as :func:`aries_lit.evaluation.winrate.length_controlled_win_rate` plus ``method``
    (``"alpaca_eval"``, or ``"builtin"`` where it fell back), ``glm``, ``se_from`` and
    ``fallback_reason``. The package gives no usable standard error for this GLM (its
    ``lc_standard_error`` is the ``sem`` of identical predictions, 0), so ``se`` is the builtin
    fit's delta-method one (``se_method`` sandwich / fisher, ``se_from: "builtin fit"``) or the
    std of the package's LC over ``n_bootstrap`` resamples of instructions (``"bootstrap"``,
    about 0.2 s a refit). Fewer than :data:`MIN_INSTRUCTIONS` judgements, or all equal, fall back
    to the builtin fit (``l2`` is its penalty), labelled ``method: "builtin"``. ``wins`` are
    checked judgements and ``builtin`` the builtin fit
    (:func:`aries_lit.evaluation.winrate.length_controlled_win_rate`, which calls this function
    and passes both).
    """
    glm = alpaca_eval_glm()  # fails with the install hint before anything else
    w = np.asarray(wins, dtype=np.float64)
    model_len = _whole_lengths(model_lengths, "model lengths")
    ref_len = _whole_lengths(reference_lengths, "reference lengths")
    if model_len.shape != w.shape or ref_len.shape != w.shape:
        raise ValueError(f"{w.size} judgements but {model_len.size} / {ref_len.size} lengths")
    builtin_se = "sandwich" if se_method == "bootstrap" else se_method
    fitted = builtin(w, model_len, ref_len, transform="tanh", l2=l2, se_method=builtin_se)
    label = {"glm": GLM_NAME, "alpaca_eval_version": ALPACA_EVAL_VERSION}
    reason = None
    if w.size < MIN_INSTRUCTIONS:
        reason = f"fewer than {MIN_INSTRUCTIONS} judgements (the GLM's 5-fold cross-validation)"
    elif np.all(w == w[0]):
        reason = "all judgements equal: nothing to fit"
    if reason is not None:
        return {**fitted, "method": "builtin", **label, "se_from": "builtin fit", "fallback_reason": reason}

    fit = _fit_once(glm, w, model_len, ref_len)
    d = (model_len - ref_len).astype(np.float64)
    if se_method == "bootstrap":
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n_bootstrap):
            idx = rng.integers(0, w.size, w.size)
            if np.all(w[idx] == w[idx][0]):
                values.append(float(w[idx][0]))
                continue
            values.append(_fit_once(glm, w[idx], model_len[idx], ref_len[idx])["lc_win_rate"])
        se = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        se_from = "bootstrap of the alpaca_eval fit"
    else:
        se, se_from = fitted["se"], "builtin fit"
    return {
        "lc_win_rate": fit["lc_win_rate"],
        "se": se,
        "intercept": fit["intercept"],
        "length_coef": fit["length_coef"],
        "length_scale": float(np.std(d, ddof=1)),  # pandas std, as the package's std_delta_len
        "transform": "tanh",
        "se_method": se_method,
        "converged": fit["converged"],
        "n": int(w.size),
        "method": "alpaca_eval",
        **label,
        "se_from": se_from,
        "fallback_reason": None,
    }
