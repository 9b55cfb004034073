"""Peak memory and wall time of one ``aries-lit`` command, and fingerprints of what it made.

Samples the resident memory of the command's whole process tree (the command and every process it
starts: a ``fit`` subprocess, vLLM workers) every ``--interval`` seconds and reports the peak of
the tree's sum and of its largest single process. With ``--fingerprint RUN_DIR`` it also hashes the
files a run leaves that must not change across a refactor (pairs, candidates, training losses,
exported weights), so two runs can be compared byte for byte.

    python benchmarks/run_memory.py --out before.json --fingerprint runs/tiny_before -- \\
        aries-lit iterate --config configs/iterate/tiny.yaml --run_dir runs/tiny_before
    python benchmarks/run_memory.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

#: files of a run whose bytes a refactor must not change (relative to the run folder)
FINGERPRINTED = ("*/pairs.jsonl", "*/candidates/candidates.jsonl", "*/model/model.safetensors")


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(sum, max) of the resident set sizes of ``proc`` and its descendants, in bytes."""
    sizes = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            sizes.append(p.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sum(sizes), max(sizes, default=0)


def _losses(run_dir: Path) -> dict[str, list[str]]:
    """Each stage's logged training losses, as written (CSV text), by stage folder."""
    out = {}
    for csv in sorted(run_dir.glob("*/train/lightning_logs/version_*/metrics.csv")):
        lines = csv.read_text().splitlines()
        header = lines[0].split(",")
        if "train/loss" not in header:
            continue
        col = header.index("train/loss")
        out[str(csv.relative_to(run_dir))] = [
            row.split(",")[col] for row in lines[1:] if row.split(",")[col]
        ]
    return out


def fingerprint(run_dir: Path) -> dict[str, object]:
    """sha256 of every fingerprinted file, and the logged losses."""
    files = {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for pattern in FINGERPRINTED
        for p in sorted(run_dir.glob(pattern))
    }
    return {"files": files, "losses": _losses(run_dir)}


def measure(cmd: list[str], interval: float) -> dict[str, object]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    peak_sum = peak_max = 0
    while proc.poll() is None:
        total, largest = _tree_rss(root)
        peak_sum, peak_max = max(peak_sum, total), max(peak_max, largest)
        time.sleep(interval)
    from aries_lit.modules.precision import cpu_name  # after the run: torch is not loaded during it

    return {
        "command": cmd,
        "returncode": proc.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_tree_mib": round(peak_sum / 2**20, 1),
        "peak_rss_largest_process_mib": round(peak_max / 2**20, 1),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_name(),
        "load_average": list(psutil.getloadavg()),
    }


def compare(a: Path, b: Path) -> int:
    one, two = json.loads(a.read_text()), json.loads(b.read_text())
    for key in ("seconds", "peak_rss_tree_mib", "peak_rss_largest_process_mib"):
        print(f"{key}: {one[key]} -> {two[key]}")
    fa, fb = one.get("fingerprint"), two.get("fingerprint")
    if fa is None or fb is None:
        return 0
    same = fa == fb
    for name in sorted(set(fa["files"]) | set(fb["files"])):
        if fa["files"].get(name) != fb["files"].get(name):
            print(f"differs: {name}")
    if fa["losses"] != fb["losses"]:
        print("differs: the logged training losses")
    print(f"byte-identical ({len(fa['files'])} files, losses of {len(fa['losses'])} stages): {same}")
    return 0 if same else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--fingerprint", type=Path, help="the run folder to fingerprint afterwards")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("give the command to measure after --")
    result = measure(cmd, args.interval)
    if args.fingerprint is not None:
        result["fingerprint"] = fingerprint(args.fingerprint)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return int(result["returncode"] != 0)


if __name__ == "__main__":
    sys.exit(main())
