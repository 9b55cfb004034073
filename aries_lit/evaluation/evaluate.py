"""``aries-lit evaluate``: Direct vs sequential self-refinement (SR) evaluation of checkpoints.

The protocol of ARIES (arXiv 2502.05605, Tables 1-3, Fig. 3a): every checkpoint answers every
prompt directly (turn 0), then refines its own previous answer ``N`` times with the refinement
template (turns 1..N). "Direct" is turn 0, "SR" is turn N, and the refinement curve is the score
at every turn. Generation reuses :mod:`aries_lit.generators` (``sequential_refinement`` by
default, any registered generator and backend by config) and writes to
``<out_dir>/<checkpoint>/<task>/``, so a killed evaluation rerun resumes where it stopped.

Task kinds, inferred from the prompt records (or set with ``kind``):

- ``verifiable``: records have an ``answer`` (GSM8K, arithmetic, a file with ``answer_field``).
  Each turn's final answer is extracted (:func:`aries_lit.selectors.answers.extract_answer`) and
  compared with the gold one by :func:`aries_lit.selectors.answers.is_correct` (``checker``:
  ``builtin`` by default, or ``math_verify``); accuracy with a Wilson interval. Default
  temperature 0 (greedy).
- ``pairwise``: records have a ``reference_output`` (AlpacaEval 2: the GPT-4 Turbo answers).
  AlpacaEval ``model_outputs.json`` files are written for Direct and SR; with a ``judge``
  (a reward model) both answers are scored, giving the win rate and the length-controlled
  win rate (:mod:`aries_lit.evaluation.winrate`) at every turn. Default temperature 0.9.
- ``open``: neither; scored by the ``reward_model`` when one is configured. Default temperature 0.9.

A local reward-model judge is **not** AlpacaEval's GPT-4 Turbo judge: its win rates are for
comparing checkpoints with each other, not with the leaderboard. The official numbers come
from running ``alpaca_eval --model_outputs <file>`` on the written outputs.

When ``torch.distributed`` is initialized, each rank generates a shard of the prompts (into
``<task>/shard-<rank>-of-<world>/``), statistics are reduced across ranks and rank 0 writes
the reports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TASKS", "checkpoint_names", "evaluate", "evaluate_checkpoints", "parse_tasks"]

DEFAULT_TASKS: list[dict[str, Any]] = [{"name": "gsm8k", "limit": 200}]
#: Task keys that configure the evaluation; every other key goes to the prompt source.
TASK_KEYS = ("label", "kind", "temperature", "max_new_tokens", "generator", "reward_model")
KINDS = ("verifiable", "pairwise", "open")
DEFAULT_TEMPERATURE = {"verifiable": 0.0, "pairwise": 0.9, "open": 0.9}
RM_CACHE_DIR = "rm_scores"


def _safe(name: str) -> str:
    """A folder-safe version of a name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "x"


# --- tasks --------------------------------------------------------------------------------


@dataclass
class Task:
    """One evaluation task: a prompt-source spec plus evaluation settings."""

    label: str
    source: str | dict[str, Any]
    kind: str | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None
    generator: dict[str, Any] = field(default_factory=dict)
    reward_model: bool | None = None
    prompts: list[dict[str, Any]] = field(default_factory=list)

    def infer_kind(self) -> str:
        if self.kind is not None:
            if self.kind not in KINDS:
                raise ValueError(f"task '{self.label}': unknown kind '{self.kind}' (use {', '.join(KINDS)})")
            if self.kind == "verifiable":
                _require(self, "answer")
            elif self.kind == "pairwise":
                _require(self, "reference_output")
            return self.kind
        if self.prompts and all(p.get("answer") is not None for p in self.prompts):
            return "verifiable"
        if self.prompts and all(p.get("reference_output") is not None for p in self.prompts):
            return "pairwise"
        return "open"


def _require(task: Task, key: str) -> None:
    for number, p in enumerate(task.prompts):
        if p.get(key) is None:
            raise ValueError(
                f"task '{task.label}' (kind {task.kind}): prompt record {number} (id '{p.get('id')}') "
                f"has no '{key}' field"
            )


def _default_label(spec: str | Mapping[str, Any]) -> str:
    if isinstance(spec, str):
        return Path(spec).stem if os.path.sep in spec or "." in spec else spec
    if spec.get("name") == "file" and spec.get("path"):
        return Path(str(spec["path"])).stem.split(".")[0]
    target = spec.get("name") or spec.get("class_path")
    if target is None:
        raise ValueError(f"task {dict(spec)} needs 'name' (a prompt source) or 'class_path'")
    return str(target).rsplit(".", 1)[-1]


def parse_tasks(tasks: Sequence[str | Mapping[str, Any]] | None) -> list[Task]:
    """Tasks from names or dicts (``{"name": "gsm8k", "limit": 200}``); see :data:`TASK_KEYS`."""
    parsed = []
    for spec in DEFAULT_TASKS if tasks is None else tasks:
        if isinstance(spec, str):
            parsed.append(Task(label=_safe(_default_label(spec)), source=spec))
            continue
        if not isinstance(spec, Mapping):
            raise TypeError(f"a task is a name or a dict, got {spec!r}")
        source = {k: v for k, v in spec.items() if k not in TASK_KEYS}
        generator = spec.get("generator") or {}
        if not isinstance(generator, Mapping):
            raise TypeError(f"task {dict(spec)}: 'generator' must be a dict of generator settings")
        parsed.append(
            Task(
                label=_safe(str(spec.get("label") or _default_label(source))),
                source=source,
                kind=spec.get("kind"),
                temperature=spec.get("temperature"),
                max_new_tokens=spec.get("max_new_tokens"),
                generator=dict(generator),
                reward_model=spec.get("reward_model"),
            )
        )
    labels = [t.label for t in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(
            f"tasks share the label(s) {', '.join(duplicates)}; give each a distinct 'label' "
            "(it names the output folder)"
        )
    if not parsed:
        raise ValueError("no tasks to evaluate")
    return parsed


def checkpoint_names(checkpoints: Sequence[str], names: Sequence[str] | None = None) -> list[str]:
    """Folder names for checkpoints: ``names`` if given, else the shortest unique path suffix.

    ``runs/iter1/hf`` and ``runs/iter2/hf`` become ``iter1-hf`` and ``iter2-hf``; a hub name
    ``org/model`` becomes ``model``.
    """
    if names is not None:
        if len(names) != len(checkpoints):
            raise ValueError(f"{len(names)} names for {len(checkpoints)} checkpoints")
        safe = [_safe(n) for n in names]
        if len(set(safe)) != len(safe):
            raise ValueError(f"checkpoint names are not unique: {list(names)}")
        return safe
    parts = [
        [p for p in Path(str(c).rstrip("/")).expanduser().parts if p not in ("/", "")] for c in checkpoints
    ]
    longest = max((len(p) for p in parts), default=1)
    for k in range(1, longest + 1):
        candidates = [_safe("-".join(p[-k:])) for p in parts]
        if len(set(candidates)) == len(candidates):
            return candidates
    return [f"{i}-{_safe('-'.join(p[-1:]))}" for i, p in enumerate(parts)]


def _model_path(checkpoint: str) -> str:
    path = Path(checkpoint).expanduser()
    return str(path) if path.exists() else checkpoint


def _check_checkpoint(checkpoint: str) -> None:
    """Fail before any generation on a local path that is not an HF model folder."""
    path = Path(checkpoint).expanduser()
    if (checkpoint.startswith((".", "/", "~")) or path.exists()) and not (path / "config.json").exists():
        raise FileNotFoundError(
            f"checkpoint '{checkpoint}' is not a Hugging Face model folder (no config.json); pass HF folders "
            "written by save_pretrained (e.g. a stage's exported hf/ folder) or hub names"
        )


# --- generation ---------------------------------------------------------------------------


def _flatten(spec: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    init_args = spec.pop("init_args", None) or {}
    return {**spec, **init_args}


def generator_spec(
    base: str | Mapping[str, Any] | None,
    task: Task,
    kind: str,
    num_candidates: int,
    max_new_tokens: int,
) -> dict[str, Any]:
    """The generator config of a task: defaults < ``base`` (the evaluation's) < the task's settings."""
    if base is None:
        spec: dict[str, Any] = {"name": "sequential_refinement"}
    elif isinstance(base, str):
        spec = {"name": base}
    else:
        spec = _flatten(base)
        if "name" not in spec and "class_path" not in spec:
            spec["name"] = "sequential_refinement"
    spec.update(_flatten(task.generator))
    if task.temperature is not None:
        spec["temperature"] = task.temperature
    if task.max_new_tokens is not None:
        spec["max_new_tokens"] = task.max_new_tokens
    spec.setdefault("temperature", DEFAULT_TEMPERATURE[kind])
    spec.setdefault("max_new_tokens", max_new_tokens)
    if spec.get("num_candidates", num_candidates) != num_candidates:
        raise ValueError(
            f"generator num_candidates={spec['num_candidates']} contradicts num_refinements="
            f"{num_candidates - 1} (candidates = refinements + 1); set num_refinements instead"
        )
    spec["num_candidates"] = num_candidates
    return spec


def _shared_backend_class():
    from aries_lit.generators.backends.base import BACKENDS, Backend

    class SharedBackend(Backend):
        """One backend per (checkpoint, backend spec), built on first use and shared by the tasks,
        so a rerun whose generations are all done never loads the model."""

        def __init__(self, spec: Any, model: str) -> None:
            super().__init__(model)
            self.spec = spec
            self._inner: Any = None

        def _get(self) -> Any:
            if self._inner is None:
                self._inner = BACKENDS.build(self.spec, model=self.model)
            self._inner.progress = self.progress
            return self._inner

        @property
        def tokenizer(self) -> Any:
            return self._get().tokenizer

        def generate(self, contexts: list[str], settings: Any) -> list[Any]:
            return self._get().generate(contexts, settings)

        def close(self) -> None:
            if self._inner is not None:
                self._inner.close()
                self._inner = None

    SharedBackend.__qualname__ = "SharedBackend"  # as recorded in the generation manifest
    return SharedBackend


# --- reward-model scoring -----------------------------------------------------------------


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


def _rm_config(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    config = {"model": spec} if isinstance(spec, str) else dict(spec)
    if not config.get("model"):
        raise ValueError(f"reward model spec {spec!r} needs 'model' (a hub name or an HF folder)")
    config["model"] = _model_path(str(config["model"]))
    return config


def _rm_hash(config: Mapping[str, Any]) -> str:
    path = Path(config["model"])
    key = {
        "model": str(path.resolve()) if path.exists() else config["model"],
        "max_length": config.get("max_length", 2048),
        "dtype": config.get("dtype", "float32"),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _check_scorers(
    reward_model: str | Mapping[str, Any] | None, judge: str | Mapping[str, Any] | None
) -> dict[str, str]:
    """Resolved paths of the reward model and the judge; a local folder whose config shows it is no
    reward model is refused at once, in one line (a hub name is checked when it loads)."""
    from aries_lit.models import check_reward_model_config, resolve_model_path

    paths = {}
    for role, spec in (("reward_model", reward_model), ("judge", judge)):
        if spec is not None:
            model = str(_rm_config(spec)["model"])
            if Path(model).expanduser().exists():
                check_reward_model_config(model)
            paths[role] = resolve_model_path(model)
    return paths


def _data_selected_by(checkpoint: str) -> list[str]:
    """Reward models that selected a checkpoint's training data, as its export recorded them."""
    from aries_lit.provenance import read_provenance

    return list(read_provenance(_model_path(checkpoint)).get("data_selected_by", []))


def _judge_warnings(judge_path: str | None, selected_by: Mapping[str, list[str]]) -> list[str]:
    """A logged warning (and report line) per checkpoint whose training data the judge selected."""
    warnings = []
    for name, models in selected_by.items():
        if judge_path is not None and judge_path in models:
            warnings.append(
                f"the judge {judge_path} also selected the training data of checkpoint '{name}' "
                "(reward-model selection): its win rates favour that checkpoint; judge with another model"
            )
            log.warning("evaluate: %s", warnings[-1])
    return warnings


def score_pairs(
    rm_spec: str | Mapping[str, Any],
    pairs: list[tuple[Any, str]],
    out_dir: Path,
    rank: int = 0,
) -> list[float]:
    """Reward-model scores of ``(prompt, response)`` pairs, cached on disk; the model is loaded only
    when some pair is not in the cache, and freed afterwards."""
    from aries_lit.selectors.reward_model import RewardModelSelector

    config = _rm_config(rm_spec)
    cache = ScoreCache(out_dir, _rm_hash(config), rank)
    keys = [ScoreCache.key(p, r) for p, r in pairs]
    todo = {k: pair for k, pair in zip(keys, pairs) if k not in cache.values}
    if todo:
        t0 = time.perf_counter()
        selector = RewardModelSelector(**{**config, "keep_loaded": True})
        selector.load()
        try:
            todo_keys = list(todo)
            batch = 256
            for start in range(0, len(todo_keys), batch):
                chunk = todo_keys[start : start + batch]
                texts = [selector.render(*todo[k]) for k in chunk]
                cache.add(dict(zip(chunk, selector.score_texts(texts))))
        finally:
            selector.unload()
        log.info("scored %d answers with %s in %.1f s", len(todo), config["model"], time.perf_counter() - t0)
    return [cache.values[k] for k in keys]


# --- per-record results -------------------------------------------------------------------


def _build_records(groups: list[dict[str, Any]], kind: str, checker: str = "builtin") -> list[dict[str, Any]]:
    from aries_lit.prompts.templates import prompt_text
    from aries_lit.selectors.answers import extract_answer, is_correct

    records = []
    for group in groups:
        record: dict[str, Any] = {"id": group["id"], "prompt": prompt_text(group["prompt"])}
        if kind == "verifiable":
            record["gold"] = str(group["answer"])
        if kind == "pairwise":
            record["reference_output"] = group["reference_output"]
            record["reference_length"] = len(group["reference_output"])
            record["dataset"] = group.get("dataset")
        turns = []
        for cand in group["candidates"]:
            text = cand["text"]
            turn: dict[str, Any] = {
                "turn": int(cand["index"]),
                "text": text,
                "length": len(text),
                "finish_reason": cand.get("finish_reason"),
                "completion_tokens": cand.get("completion_tokens"),
            }
            if kind == "verifiable":
                extracted = extract_answer(text)
                turn["extracted"] = extracted
                turn["correct"] = is_correct(text, record["gold"], checker)
                turn["no_answer"] = extracted is None
            turns.append(turn)
        record["turns"] = turns
        records.append(record)
    return records


def _local_metrics(
    records: list[dict[str, Any]], kind: str, num_turns: int, confidence: float, ci: str
) -> dict[str, Any]:
    """Statistics reduced over ranks (every rank calls this with its shard, in the same order)."""
    from aries_lit.evaluation.stats import summarize

    metrics: dict[str, Any] = {"kind": kind, "num_turns": num_turns}

    def curve(key: str, interval: str) -> list[dict[str, Any]]:
        return [
            {
                "turn": t,
                **summarize([r["turns"][t][key] for r in records], ci=interval, confidence=confidence),
            }
            for t in range(num_turns)
        ]

    length = curve("length", "normal")
    metrics["n"] = length[0]["n"] if length else 0
    metrics["length"] = {"direct": length[0], "sr": length[-1], "curve": length}
    if kind == "verifiable":
        acc = curve("correct", ci)
        metrics["accuracy"] = {"direct": acc[0], "sr": acc[-1], "curve": acc}
        first = [float(r["turns"][0]["correct"]) for r in records]
        last = [float(r["turns"][-1]["correct"]) for r in records]
        metrics["accuracy"]["delta"] = summarize([b - a for a, b in zip(first, last)], "normal", confidence)
        n = metrics["n"]
        w2r = summarize([float(b > a) for a, b in zip(first, last)], "normal", confidence)["mean"]
        r2w = summarize([float(a > b) for a, b in zip(first, last)], "normal", confidence)["mean"]
        metrics["accuracy"]["flips"] = {
            "wrong_to_right": int(round(w2r * n)) if n else 0,
            "right_to_wrong": int(round(r2w * n)) if n else 0,
        }
        no_answer = curve("no_answer", "normal")
        metrics["accuracy"]["no_answer_rate"] = [c["mean"] for c in no_answer]
    return metrics


def _reward_metrics(records: list[dict[str, Any]], num_turns: int, confidence: float) -> dict[str, Any]:
    from aries_lit.evaluation.stats import summarize

    curve = [
        {"turn": t, **summarize([r["turns"][t]["reward"] for r in records], "normal", confidence)}
        for t in range(num_turns)
    ]
    return {"direct": curve[0], "sr": curve[-1], "curve": curve}


def _winrate_metrics(
    records: list[dict[str, Any]], num_turns: int, lc_options: Mapping[str, Any], confidence: float
) -> dict[str, Any]:
    """Win rates from all records (call on the gathered records)."""
    from aries_lit.evaluation.stats import normal_interval
    from aries_lit.evaluation.winrate import length_controlled_win_rate, win_rate

    ref_len = [r["reference_length"] for r in records]
    curve = []
    for t in range(num_turns):
        wins = [r["turns"][t]["win"] for r in records]
        lengths = [r["turns"][t]["length"] for r in records]
        wr = win_rate(wins)
        lc = length_controlled_win_rate(wins, lengths, ref_len, **lc_options)
        low, high = normal_interval(lc["lc_win_rate"], lc["se"], confidence)
        curve.append(
            {
                "turn": t,
                **wr,
                "lc_win_rate": lc["lc_win_rate"],
                "lc_se": lc["se"],
                "lc_ci_low": max(0.0, low),
                "lc_ci_high": min(1.0, high),
                "lc_fit": lc,
            }
        )
    return {"direct": curve[0], "sr": curve[-1], "curve": curve}


def _gather(records: list[dict[str, Any]], world: int) -> list[dict[str, Any]]:
    if world <= 1:
        return records
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, records)
    return [r for part in parts for r in part]


# --- the evaluation -----------------------------------------------------------------------


def evaluate_checkpoints(
    checkpoints: Sequence[str] | str,
    tasks: Sequence[str | Mapping[str, Any]] | None = None,
    out_dir: str | os.PathLike = "runs/eval",
    num_refinements: int = 3,
    generator: str | Mapping[str, Any] | None = None,
    reward_model: str | Mapping[str, Any] | None = None,
    judge: str | Mapping[str, Any] | None = None,
    max_new_tokens: int = 256,
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
    ci: str = "wilson",
    lc_options: Mapping[str, Any] | None = None,
    tie_tolerance: float = 0.0,
    plots: bool = True,
    progress: bool = True,
    print_table: bool = False,
    checker: str = "builtin",
) -> dict[str, Any]:
    """Evaluate checkpoints Direct vs SR on tasks; write reports; return the metrics.

    Args:
        checkpoints: HF model folders or hub names, in report order (e.g. iteration order).
        tasks: names or dicts, e.g. ``{"name": "gsm8k", "limit": 200}``,
            ``{"name": "arithmetic", "count": 300, "seed": 1}``, ``{"name": "alpaca_eval", "limit": 805}``,
            ``{"name": "file", "path": "x.jsonl", "answer_field": "gold", "label": "mine"}``. Keys
            ``label``, ``kind``, ``temperature``, ``max_new_tokens``, ``generator`` (overrides) and
            ``reward_model`` (bool: score this task with the reward model) configure the evaluation;
            the others go to the prompt source. Default: GSM8K test, first 200.
        out_dir: root of the generations (``<out_dir>/<checkpoint>/<task>/``) and reports.
        num_refinements: ``N``; turns 0..N are generated (``N + 1`` candidates), SR = turn N.
        generator: generator name or dict (``{"name": "sequential_refinement", "backend": "vllm",
            "chunk_size": 256, "template": "paper", "seed": 0, "top_p": 1.0, ...}``).
        reward_model: reward model (HF folder / hub name, or a dict of
            :class:`~aries_lit.selectors.reward_model.RewardModelSelector` arguments) scoring
            every turn of tasks without gold answers (or tasks with ``reward_model: true``).
        judge: reward model judging pairwise tasks against the reference (default: ``reward_model``).
        max_new_tokens: default generation budget (a task or the generator spec may override it).
        names: display/folder names of the checkpoints (default: shortest unique path suffix).
        confidence, ci: interval coverage and kind for accuracy (``wilson`` or ``normal``).
        lc_options: arguments of :func:`~aries_lit.evaluation.winrate.length_controlled_win_rate`
            (``transform``, ``l2``, ``se_method``, ``n_bootstrap``, ``seed``).
        tie_tolerance: judge score difference counted as a tie.
        plots: write PNG plots.
        progress: progress bars.
        print_table: print the Markdown summary at the end.
        checker: how verifiable answers are graded: ``builtin`` (the extraction cascade of
            :mod:`aries_lit.selectors.answers`) or ``math_verify`` (``pip install math-verify``);
            see :func:`~aries_lit.selectors.answers.is_correct`.

    Returns ``{"out_dir", "config", "checkpoints": {name: {"path", "tasks": {label: metrics}}},
    "reports": {...paths}, "markdown": str}``. Metrics per task: ``n``, ``kind``, ``length``, and
    by kind ``accuracy`` / ``reward`` / ``win_rate``, each with ``direct``, ``sr`` and ``curve``
    (one entry per turn: ``mean``, ``ci_low``, ``ci_high``, ``se``, ``n``; win rates as fractions).
    """
    from aries_lit.distributed import backend_for_rank, rank_world
    from aries_lit.evaluation import report
    from aries_lit.generators import GENERATORS, load_groups
    from aries_lit.prompts.sources import load_prompts

    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = [str(checkpoints)]
    checkpoints = [str(c) for c in checkpoints]
    if not checkpoints:
        raise ValueError("no checkpoints to evaluate")
    if num_refinements < 0:
        raise ValueError(f"num_refinements must be >= 0, got {num_refinements}")
    if ci not in ("wilson", "normal"):
        raise ValueError(f"ci must be 'wilson' or 'normal', got '{ci}'")
    from aries_lit.selectors.answers import validate_checker

    validate_checker(checker)
    lc_options = dict(lc_options or {})
    from aries_lit.evaluation.winrate import length_controlled_win_rate

    length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0], **lc_options)  # bad options fail now
    t_start = time.perf_counter()
    out = Path(out_dir).expanduser()
    rank, world = rank_world()
    for ckpt in checkpoints:
        _check_checkpoint(ckpt)
    ckpt_names = checkpoint_names(checkpoints, names)
    parsed = parse_tasks(tasks)
    judge = judge if judge is not None else reward_model
    num_turns = num_refinements + 1
    scorers = _check_scorers(reward_model, judge)  # a folder that is no reward model fails before generating
    selected_by = {name: _data_selected_by(ckpt) for name, ckpt in zip(ckpt_names, checkpoints)}

    kinds: dict[str, str] = {}
    for task in parsed:
        task.prompts = load_prompts(task.source)
        if not task.prompts:
            raise ValueError(f"task '{task.label}' has no prompts")
        kinds[task.label] = task.infer_kind()
    gen_specs = {
        t.label: generator_spec(generator, t, kinds[t.label], num_turns, max_new_tokens) for t in parsed
    }
    judging = any(kind == "pairwise" for kind in kinds.values())
    warnings = _judge_warnings(scorers.get("judge") if judging else None, selected_by)
    config = {
        "checkpoints": dict(zip(ckpt_names, checkpoints)),
        "tasks": [
            {"label": t.label, "source": t.source, "kind": kinds[t.label], "num_prompts": len(t.prompts)}
            for t in parsed
        ],
        "num_refinements": num_refinements,
        "generators": gen_specs,
        "reward_model": reward_model,
        "judge": judge,
        "reward_model_path": scorers.get("reward_model"),
        "judge_path": scorers.get("judge"),
        "data_selected_by": selected_by,
        "warnings": warnings,
        "confidence": confidence,
        "ci": ci,
        "lc_options": lc_options,
        "tie_tolerance": tie_tolerance,
        "checker": checker,
        "world_size": world,
    }

    # 1. generate (resumable), one shared lazily-built backend per checkpoint and backend spec
    SharedBackend = _shared_backend_class()
    shards = {t.label: t.prompts[rank::world] for t in parsed}
    gen_dirs: dict[tuple[str, str], Path] = {}
    gen_seconds: dict[str, float] = {}
    for name, ckpt in zip(ckpt_names, checkpoints):
        model = _model_path(ckpt)
        backends: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            for task in parsed:
                spec = dict(gen_specs[task.label])
                backend_spec = backend_for_rank(spec.pop("backend", "transformers"), world)
                key = json.dumps(backend_spec, sort_keys=True, default=str)
                if key not in backends:
                    backends[key] = SharedBackend(backend_spec, model)
                gen = GENERATORS.build(spec, backend=backends[key])
                task_dir = out / name / task.label
                gen_dir = task_dir if world == 1 else task_dir / f"shard-{rank}-of-{world}"
                log.info(
                    "evaluate: %s on %s (%d prompts) -> %s",
                    name,
                    task.label,
                    len(shards[task.label]),
                    gen_dir,
                )
                gen.run(shards[task.label], model, gen_dir, progress=progress)
                gen_dirs[(name, task.label)] = gen_dir
        finally:
            for backend in backends.values():
                backend.close()
        gen_seconds[name] = time.perf_counter() - t0

    # 2. per-record results
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name in ckpt_names:
        for task in parsed:
            groups = load_groups(gen_dirs[(name, task.label)], shards[task.label], num_turns)
            if len(groups) != len(shards[task.label]):
                raise RuntimeError(
                    f"{gen_dirs[(name, task.label)]}: {len(shards[task.label]) - len(groups)} prompts lack "
                    f"some of their {num_turns} candidates after generation"
                )
            records[(name, task.label)] = _build_records(groups, kinds[task.label], checker)

    # 3. reward-model scores (cached), then the judge's
    def wants_rm(task: Task) -> bool:
        return reward_model is not None and (
            task.reward_model if task.reward_model is not None else kinds[task.label] != "verifiable"
        )

    def candidate_pairs(task: Task, name: str) -> list[tuple[Any, str]]:
        recs = records[(name, task.label)]
        return [(p["prompt"], t["text"]) for p, r in zip(shards[task.label], recs) for t in r["turns"]]

    def reference_pairs(task: Task) -> list[tuple[Any, str]]:
        return [(p["prompt"], p["reference_output"]) for p in shards[task.label]]

    rm_tasks = [t for t in parsed if wants_rm(t)]
    judge_tasks = [t for t in parsed if judge is not None and kinds[t.label] == "pairwise"]
    jobs: list[tuple[Any, list[tuple[Any, str]]]] = []
    if rm_tasks:
        jobs.append((reward_model, [x for t in rm_tasks for n in ckpt_names for x in candidate_pairs(t, n)]))
    if judge_tasks:
        pairs = [x for t in judge_tasks for x in reference_pairs(t)]
        pairs += [x for t in judge_tasks for n in ckpt_names for x in candidate_pairs(t, n)]
        jobs.append((judge, pairs))
    for spec, pairs in jobs:  # one model load per reward model; everything below reads the cache
        score_pairs(spec, pairs, out, rank)
    for task in rm_tasks:
        for name in ckpt_names:
            scores = iter(score_pairs(reward_model, candidate_pairs(task, name), out, rank))
            for r in records[(name, task.label)]:
                for turn in r["turns"]:
                    turn["reward"] = next(scores)
    for task in judge_tasks:
        ref_scores = score_pairs(judge, reference_pairs(task), out, rank)
        for name in ckpt_names:
            scores = iter(score_pairs(judge, candidate_pairs(task, name), out, rank))
            for r, ref in zip(records[(name, task.label)], ref_scores):
                r["reference_judge_score"] = ref
                for turn in r["turns"]:
                    turn["judge_score"] = next(scores)
                    diff = turn["judge_score"] - ref
                    turn["win"] = 0.5 if abs(diff) <= tie_tolerance else float(diff > 0)

    # 4. metrics: statistics reduced over ranks, win rates on the gathered records
    results: dict[str, Any] = {}
    for name, ckpt in zip(ckpt_names, checkpoints):
        task_results = {}
        for task in parsed:
            recs = records[(name, task.label)]
            metrics = _local_metrics(recs, kinds[task.label], num_turns, confidence, ci)
            if wants_rm(task):
                metrics["reward"] = _reward_metrics(recs, num_turns, confidence)
            all_recs = _gather(recs, world)
            if judge is not None and kinds[task.label] == "pairwise":
                metrics["win_rate"] = _winrate_metrics(all_recs, num_turns, lc_options, confidence)
                metrics["judge"] = str(_rm_config(judge)["model"])
            metrics["generation_dir"] = str(out / name / task.label)
            task_results[task.label] = {"metrics": metrics, "records": all_recs}
        results[name] = {
            "path": ckpt,
            "data_selected_by": selected_by[name],
            "generation_seconds": gen_seconds[name],
            "tasks": task_results,
        }

    # 5. reports (rank 0)
    config["seconds"] = time.perf_counter() - t_start
    markdown = report.markdown_summary(results, config)
    paths: dict[str, Any] = {}
    if rank == 0:
        paths = report.write_reports(out, results, config, markdown, plots=plots)
    if print_table and rank == 0:
        print(markdown)
    return {
        "out_dir": str(out),
        "config": config,
        "checkpoints": {
            name: {
                "path": res["path"],
                "tasks": {label: tr["metrics"] for label, tr in res["tasks"].items()},
            }
            for name, res in results.items()
        },
        "reports": paths,
        "markdown": markdown,
    }


def evaluate(
    checkpoints: list[str],
    tasks: list[dict[str, Any]] | None = None,
    out_dir: str = "runs/eval",
    num_refinements: int = 3,
    generator: str | dict[str, Any] | None = None,
    reward_model: str | dict[str, Any] | None = None,
    judge: str | dict[str, Any] | None = None,
    max_new_tokens: int = 256,
    names: list[str] | None = None,
    confidence: float = 0.95,
    ci: Literal["wilson", "normal"] = "wilson",
    lc_options: dict[str, Any] | None = None,
    tie_tolerance: float = 0.0,
    plots: bool = True,
    progress: bool = True,
    checker: Literal["builtin", "math_verify"] = "builtin",
) -> None:
    """Direct vs sequential self-refinement evaluation (ARIES Tables 1-3, Fig. 3a).

    Each checkpoint answers each task's prompts (turn 0, "Direct") and refines its answer
    ``num_refinements`` times (turn N, "SR"). Writes ``<out_dir>/report.json`` (config, metrics,
    every per-record result), ``report.md`` (the summary table, printed at the end), PNG plots
    under ``plots/`` and, for AlpacaEval, ``model_outputs_direct.json`` / ``model_outputs_sr.json``
    in AlpacaEval's format. A rerun reuses finished generations and cached reward-model scores.

    Args:
        checkpoints: HF model folders or hub names, in report order (e.g. iteration order).
        tasks: prompt sets, e.g. ``[{name: gsm8k, limit: 200}, {name: arithmetic, count: 300, seed: 1},
            {name: alpaca_eval, limit: 805}]``; keys ``label``, ``kind``, ``temperature``,
            ``max_new_tokens``, ``generator``, ``reward_model`` configure the evaluation, the rest
            the prompt source. Default: the first 200 GSM8K test problems.
        out_dir: output root: ``<out_dir>/<checkpoint>/<task>/`` holds each generation.
        num_refinements: refinement turns N (turns 0..N are generated).
        generator: generator name or settings (default ``sequential_refinement``, greedy for
            tasks with answers, temperature 0.9 otherwise), e.g. ``{name: sequential_refinement,
            backend: vllm, chunk_size: 256}``.
        reward_model: reward model (HF folder or hub name, or ``{model: ..., batch_size: ...}``)
            scoring every turn of tasks without gold answers.
        judge: reward model judging AlpacaEval answers against the GPT-4 Turbo reference
            (default: reward_model). A local judge, not AlpacaEval's GPT-4 judge.
        max_new_tokens: generation budget per answer.
        names: checkpoint names for folders and reports.
        confidence: interval coverage.
        ci: accuracy interval: ``wilson`` or ``normal``.
        lc_options: length-controlled win rate options (``transform``: tanh|standardize,
            ``l2``, ``se_method``: sandwich|fisher|bootstrap, ``n_bootstrap``, ``seed``).
        tie_tolerance: judge score difference counted as a tie.
        plots: write PNG plots.
        progress: show progress bars.
        checker: answer checker for tasks with gold answers: ``builtin`` (default) or
            ``math_verify`` (Hugging Face math-verify; ``pip install math-verify``).
    """
    evaluate_checkpoints(
        checkpoints,
        tasks=tasks,
        out_dir=out_dir,
        num_refinements=num_refinements,
        generator=generator,
        reward_model=reward_model,
        judge=judge,
        max_new_tokens=max_new_tokens,
        names=names,
        confidence=confidence,
        ci=ci,
        lc_options=lc_options,
        tie_tolerance=tie_tolerance,
        plots=plots,
        progress=progress,
        print_table=True,
        checker=checker,
    )
