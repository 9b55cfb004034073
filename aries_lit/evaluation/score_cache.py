"""Reward-model scores of ``(prompt, response)`` pairs for evaluation, cached on disk.

A reward model (or judge) is given as an HF folder / hub name or a dict of
:class:`~aries_lit.selectors.reward_model.RewardModelSelector` arguments. Its scores are kept in
``<out_dir>/rm_scores/<rm hash>.rank<r>.jsonl``, one line per scored pair, so a rerun (or another
task scoring the same answers) loads the model only for pairs not scored yet.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aries_lit.evaluation.tasks import model_path

log = logging.getLogger(__name__)

__all__ = ["RM_CACHE_DIR", "ScoreCache", "check_scorers", "rm_config", "score_pairs"]

RM_CACHE_DIR = "rm_scores"
#: Pairs scored per call of the reward model (each chunk is appended to the cache when scored).
SCORE_CHUNK = 256


class ScoreCache:
    """Content-addressed reward-model scores: ``sha256(model key, conversation) -> score``, kept in
    ``<out_dir>/rm_scores/<rm hash>.rank<r>.jsonl`` (all ranks' files are read)."""

    def __init__(self, out_dir: Path, rm_hash: str, rank: int) -> None:
        self.dir = out_dir / RM_CACHE_DIR
        self.path = self.dir / f"{rm_hash}.rank{rank}.jsonl"
        self.values: dict[str, float] = {}
        for path in sorted(self.dir.glob(f"{rm_hash}.rank*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    item = json.loads(line)
                    self.values[item["key"]] = float(item["score"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line

    @staticmethod
    def key(prompt: Any, response: str) -> str:
        blob = json.dumps([prompt, response], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def add(self, items: dict[str, float]) -> None:
        if not items:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            for key, score in items.items():
                f.write(json.dumps({"key": key, "score": score}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.values.update(items)


def rm_config(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The selector arguments of a reward-model spec (``model`` made a local path when it exists)."""
    config = {"model": spec} if isinstance(spec, str) else dict(spec)
    if not config.get("model"):
        raise ValueError(f"reward model spec {spec!r} needs 'model' (a hub name or an HF folder)")
    config["model"] = model_path(str(config["model"]))
    return config


def _rm_hash(config: Mapping[str, Any]) -> str:
    """The cache file key of a reward model: its model and the settings that change its scores
    (``max_length`` and ``dtype``, the selector's defaults when unset)."""
    from aries_lit.selectors.reward_model import RewardModelSelector

    defaults = inspect.signature(RewardModelSelector).parameters
    path = Path(config["model"])
    key = {
        "model": str(path.resolve()) if path.exists() else config["model"],
        "max_length": config.get("max_length", defaults["max_length"].default),
        "dtype": config.get("dtype", defaults["dtype"].default),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def check_scorers(
    reward_model: str | Mapping[str, Any] | None, judge: str | Mapping[str, Any] | None
) -> dict[str, str]:
    """Resolved paths of the reward model and the judge; a local folder whose config shows it is no
    reward model is refused at once, in one line (a hub name is checked when it loads)."""
    from aries_lit.models import check_reward_model_config, resolve_model_path

    paths = {}
    for role, spec in (("reward_model", reward_model), ("judge", judge)):
        if spec is not None:
            model = str(rm_config(spec)["model"])
            if Path(model).expanduser().exists():
                check_reward_model_config(model)
            paths[role] = resolve_model_path(model)
    return paths


def score_pairs(
    rm_spec: str | Mapping[str, Any],
    pairs: list[tuple[Any, str]],
    out_dir: Path,
    rank: int = 0,
) -> list[float]:
    """Reward-model scores of ``(prompt, response)`` pairs, cached on disk; the model is loaded only
    when some pair is not in the cache, and freed afterwards."""
    from aries_lit.selectors.reward_model import RewardModelSelector

    config = rm_config(rm_spec)
    cache = ScoreCache(out_dir, _rm_hash(config), rank)
    keys = [ScoreCache.key(p, r) for p, r in pairs]
    todo = {k: pair for k, pair in zip(keys, pairs) if k not in cache.values}
    if todo:
        t0 = time.perf_counter()
        selector = RewardModelSelector(**{**config, "keep_loaded": True})
        selector.load()
        try:
            todo_keys = list(todo)
            for start in range(0, len(todo_keys), SCORE_CHUNK):
                chunk = todo_keys[start : start + SCORE_CHUNK]
                texts = [selector.render(*todo[k]) for k in chunk]
                cache.add(dict(zip(chunk, selector.score_texts(texts))))
        finally:
            selector.unload()
        log.info("scored %d answers with %s in %.1f s", len(todo), config["model"], time.perf_counter() - t0)
    return [cache.values[k] for k in keys]
