"""The hashes that name a study's stages, shared candidate folders and evaluations
(:func:`stage_key`, :func:`collect_key`, :func:`eval_key`), and the seed put into a stage before it
is hashed (:func:`seeded_stage`). Arms that share settings share keys, so shared stages run once
and finished evaluations are reused. Stages are the typed specs of :mod:`aries_lit.pipeline.specs`;
their keys hash them in the dict shape the study configs were hashed in when their results were
recorded, so that no committed key moves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aries_lit.pipeline.specs import CollectSpec, StageSpec
from aries_lit.registry import split_spec


def _digest(obj: Any) -> str:
    """A short, stable hash of JSON-able settings (stage folders, shared candidate folders)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def seeded_stage(stage: StageSpec, seed: int) -> StageSpec:
    """The stage with ``seed`` as its training and collection seed (:meth:`StageSpec.seeded`)."""
    return stage.seeded(seed)


#: the ``collect`` options that hold a part spec
_COLLECT_PARTS = ("prompts", "generator", "selector")


def _hash_shape(spec: Any, nested: bool = False) -> Any:
    """A part spec in the fixed shape that stage keys hash (see :func:`stage_key`)."""
    if not isinstance(spec, Mapping):
        return spec
    target, options = split_spec(spec)
    if target is None:
        return dict(spec)
    options = {k: _hash_shape(v, nested=True) if k == "backend" else v for k, v in options.items()}
    if nested:
        return {"name": target, "init_args": options} if options else {"name": target}
    return {"name": target, **options}


def _hash_collect(collect: CollectSpec) -> dict[str, Any]:
    """``collect`` as its config writes it, part specs in the hashed shape (:func:`stage_key`)."""
    return {k: _hash_shape(v) if k in _COLLECT_PARTS else v for k, v in collect.to_config().items()}


def stage_key(stage: StageSpec, input_key: str) -> str:
    """A short hash of a stage's settings (its name aside) and of what it starts from.

    The stage is hashed as the dict its config writes (:meth:`StageSpec.to_config`, ``name`` left
    out), every part spec of ``collect`` (``prompts``, ``generator``, ``selector``) in one fixed
    shape: the flat ``{"name": X, **options}`` (the form the study configs were written in when
    their results were recorded, before ``{class_path: X, init_args: {...}}``), with the part's
    ``backend`` option as ``{"name": X, "init_args": {...}}`` (``init_args`` left out when it has
    no options). A bare name (``selector: verifier``) is hashed as the string it is, as before, so
    no key of an existing run moves; it differs from ``{class_path: verifier}``. The ``fit``
    config (LightningCLI's ``class_path``/``init_args``) is hashed as written.
    ``tests/test_study.py`` checks the keys of ``configs/study/cpu.yaml`` against its committed
    result files.
    """
    settings = stage.to_config()
    del settings["name"]
    if stage.collect is not None:
        settings["collect"] = _hash_collect(stage.collect)
    return _digest({"input": input_key, "stage": settings})


def collect_key(collect: CollectSpec) -> str:
    """The hash naming a ``collect`` run's shared candidates folder (specs as in :func:`stage_key`)."""
    return _digest(_hash_collect(collect))


def eval_key(base_model: str, evaluation: dict[str, Any]) -> str:
    """The hash of what an evaluation depends on besides the model: the study's base model (its
    name as configured) and its ``evaluation`` options, part specs (each task, the generator and
    its backend) in one shape whichever form the config writes them in. Result files record it
    (``eval_key``), so a finished evaluation is reused only under the same settings."""
    options = dict(evaluation)
    if isinstance(options.get("tasks"), list):
        options["tasks"] = [_hash_shape(t) for t in options["tasks"]]
    if "generator" in options:
        options["generator"] = _hash_shape(options["generator"])
    return _digest({"base_model": base_model, "evaluation": options})


__all__ = ["collect_key", "eval_key", "seeded_stage", "stage_key"]
