"""Persistent candidate storage: ``candidates.jsonl`` + ``manifest.json`` in a generation folder.

``candidates.jsonl`` holds one JSON line per finished candidate::

    {"id": "gsm8k-0", "index": 0, "text": "...", "prompt_tokens": 85, "completion_tokens": 64,
     "finish_reason": "stop", "generator": "sequential_refinement", "settings_hash": "3f2a..."}

``index`` is the 0-based refinement turn (sequential refinement) or the sample number
(parallel sampling). Lines are appended, flushed and fsynced after every backend call, so a
run that dies keeps every finished candidate; a torn last line (a line that does not parse)
is dropped on the next run and the file truncated back to the last complete line.

:func:`load_groups` turns a folder into selector input.

A generation sharded over ranks (``torchrun ... aries-lit generate``) writes each rank's
candidates to ``shards/rank-<r>-of-<w>/`` inside the folder first; :func:`merge_shards` folds
them into the folder's own ``candidates.jsonl`` (idempotent, so a crash while merging is
repaired by the next run) and removes them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aries_lit.core.errors import FileContentError
from aries_lit.core.io import write_json_atomic

log = logging.getLogger(__name__)

CANDIDATES_FILE = "candidates.jsonl"
MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"


def check_prompts(prompts: Iterable[Mapping[str, Any]], source: str = "prompts") -> list[dict[str, Any]]:
    """Validate prompt records (``{"id", "prompt", ...}``) and return them with ``id`` as a string.

    Raises a ``ValueError``/``TypeError`` naming the record and field for a missing or bad
    ``id``/``prompt`` and for a duplicate id.
    """
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(prompts):
        if not isinstance(rec, Mapping):
            raise TypeError(
                f"{source} record {i}: expected a dict with 'id' and 'prompt', got {type(rec).__name__}"
            )
        if rec.get("id") is None:
            raise ValueError(
                f"{source} record {i}: missing field 'id' (every prompt needs a stable, unique id)"
            )
        if "prompt" not in rec:
            raise ValueError(f"{source} record {i} (id '{rec['id']}'): missing field 'prompt'")
        prompt = rec["prompt"]
        if isinstance(prompt, str):
            if not prompt.strip():
                raise ValueError(f"{source} record {i} (id '{rec['id']}'): field 'prompt' is empty")
        elif isinstance(prompt, list) and prompt:
            for j, m in enumerate(prompt):
                if not (isinstance(m, Mapping) and "role" in m and "content" in m):
                    raise ValueError(
                        f"{source} record {i} (id '{rec['id']}'): field 'prompt' message {j} is not a "
                        "{'role': ..., 'content': ...} dict"
                    )
        else:
            raise ValueError(
                f"{source} record {i} (id '{rec['id']}'): field 'prompt' must be a string or a non-empty "
                f"list of chat messages, got {type(prompt).__name__}"
            )
        pid = str(rec["id"])
        if pid in seen:
            raise ValueError(
                f"{source}: duplicate prompt id '{pid}' (records {seen[pid]} and {i}); "
                "prompt ids must be unique"
            )
        seen[pid] = i
        out.append(dict(rec, id=pid))
    return out


def read_candidates(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a ``candidates.jsonl`` (``[]`` if it does not exist).

    A last line that does not parse (a write torn by a crash) is dropped; with
    ``repair=True`` the file is truncated back to the last complete line (and a missing
    final newline added). A bad line elsewhere is an error naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    pos, lineno = 0, 0
    truncate_at: int | None = None
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        lineno += 1
        text = data[pos:end].strip()
        if text:
            try:
                rec = json.loads(text)
                if not isinstance(rec, dict) or any(k not in rec for k in ("id", "index", "text")):
                    raise ValueError("not a candidate record (needs 'id', 'index' and 'text')")
            except ValueError as err:
                if end == len(data):  # the last line: a torn write
                    log.warning("%s: dropping torn last line %d (%d bytes)", path, lineno, end - pos)
                    truncate_at = pos
                    break
                raise FileContentError(
                    f"{path}: line {lineno} is not a valid candidate record: {err}"
                ) from err
            records.append(rec)
        pos = end
    if repair:
        if truncate_at is not None:
            with open(path, "r+b") as f:
                f.truncate(truncate_at)
                f.flush()
                os.fsync(f.fileno())
        elif data and not data.endswith(b"\n"):
            with open(path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
    return records


class CandidateStore:
    """Append-only candidate file of one generation folder, with an index of what is done.

    Opening repairs a torn last line. :meth:`append` writes one backend call's records,
    then flushes and fsyncs. A candidate already stored is never written twice.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / CANDIDATES_FILE
        self.done: dict[tuple[str, int], dict[str, Any]] = {}
        for rec in read_candidates(self.path, repair=True):
            key = (str(rec["id"]), int(rec["index"]))
            if key in self.done:
                log.warning("%s: duplicate candidate %s index %d ignored", self.path, *key)
                continue
            self.done[key] = rec

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.done

    def __len__(self) -> int:
        return len(self.done)

    def get(self, pid: str, index: int) -> dict[str, Any] | None:
        return self.done.get((pid, index))

    def records(self) -> list[dict[str, Any]]:
        return list(self.done.values())

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        new = [r for r in records if (r["id"], r["index"]) not in self.done]
        if not new:
            return
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new).encode("utf-8")
        with open(self.path, "ab") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        for r in new:
            self.done[(r["id"], r["index"])] = r


def shard_dir(out_dir: str | Path, rank: int, world: int) -> Path:
    """Where rank ``rank`` of ``world`` writes its candidates during a sharded generation."""
    return Path(out_dir) / SHARDS_DIR / f"rank-{rank}-of-{world}"


def merge_shards(out_dir: str | Path) -> int:
    """Fold every shard's candidates into ``out_dir/candidates.jsonl``, then delete the shards.

    Candidates already in the folder are not written again, so merging twice (a crash
    between appending and deleting) changes nothing. Shards whose candidates carry a different
    ``settings_hash`` than the folder's manifest are refused, naming the shard. Returns the
    number of candidates added.
    """
    root = Path(out_dir) / SHARDS_DIR
    if not root.is_dir():
        return 0
    manifest = read_manifest(out_dir)
    expected = (manifest or {}).get("settings_hash")
    store = CandidateStore(out_dir)
    added = 0
    for shard in sorted(p for p in root.iterdir() if p.is_dir()):
        records = read_candidates(shard / CANDIDATES_FILE)
        hashes = {r.get("settings_hash") for r in records} - {None}
        if expected is not None and hashes - {expected}:
            raise ValueError(
                f"'{shard / CANDIDATES_FILE}' holds candidates with settings_hash {sorted(hashes)}, not "
                f"{expected} (the settings of '{out_dir}'); delete the shard or use a new out_dir"
            )
        before = len(store)
        store.append(records)
        added += len(store) - before
    shutil.rmtree(root)
    if added:
        log.info("%s: merged %d candidates from %s", out_dir, added, root)
    return added


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise FileContentError(
            f"{path} is not valid JSON ({err}); delete it to rebuild it from the candidates"
        ) from err


def write_manifest(out_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` atomically (:func:`aries_lit.core.io.write_json_atomic`)."""
    write_json_atomic(
        Path(out_dir) / MANIFEST_FILE, manifest, indent=2, trailing_newline=True, ensure_ascii=False
    )


def load_groups(
    out_dir: str | Path, prompts: Iterable[Mapping[str, Any]], num_candidates: int | None = None
) -> list[dict[str, Any]]:
    """Selector input: one group per prompt whose ``num_candidates`` candidates are all finished.

    Each group is the prompt record (``id``, ``prompt``, ``answer`` if any, its other
    fields) plus ``"candidates"``: the candidate records sorted by ``index``. Groups follow
    the order of ``prompts``; prompts with missing candidates are left out (a log line says
    how many; :func:`aries_lit.pipeline.collect.select` refuses such a folder unless
    ``allow_partial``). ``num_candidates`` defaults to the folder's manifest.
    """
    out_dir = Path(out_dir)
    if num_candidates is None:
        manifest = read_manifest(out_dir)
        if manifest is None or "num_candidates" not in manifest:
            raise FileNotFoundError(
                f"{out_dir / MANIFEST_FILE} is missing (is '{out_dir}' a generation folder?); "
                "pass num_candidates to read the candidates without it"
            )
        num_candidates = int(manifest["num_candidates"])
    by_id: dict[str, dict[int, dict[str, Any]]] = {}
    for rec in read_candidates(out_dir / CANDIDATES_FILE):
        by_id.setdefault(str(rec["id"]), {}).setdefault(int(rec["index"]), rec)
    groups = []
    records = check_prompts(prompts)
    for rec in records:
        cands = by_id.get(rec["id"], {})
        if all(i in cands for i in range(num_candidates)):
            groups.append({**rec, "candidates": [cands[i] for i in range(num_candidates)]})
    if len(groups) < len(records):
        log.info(
            "%s: %d of %d prompts have all %d candidates", out_dir, len(groups), len(records), num_candidates
        )
    return groups
