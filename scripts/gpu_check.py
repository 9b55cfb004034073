"""One GPU check for a bare, offline CUDA machine: the CUDA-only tests and a bf16 training benchmark.

    python scripts/gpu_check.py            # on a GPU: CUDA tests + DPO at SmolLM2-135M shape, bf16
    python scripts/gpu_check.py --dry      # on CPU: the same code path at a tiny shape, fp32, 2 steps

Checks, in order (the table at the end lists them; the exit code is 1 if any failed):

1. ``environment``: torch, CUDA and the device (``bf16`` support on a GPU).
2. ``train <loss>``: a few AdamW steps of ``PreferenceModule`` (any registered preference loss,
   ``dpo`` by default) on random token batches, through a Lightning ``Trainer``; the losses must be
   finite and the weights must move.
3. ``throughput`` and ``MFU``: tokens/s over the timed steps and model FLOPs utilisation against
   the GPU's peak dense bf16 FLOP/s (:data:`PEAK_BF16_FLOPS`, or ``--peak_tflops``).
4. one row per CUDA-only test file (``tests/test_deepspeed.py``: ZeRO-2/3 through ``aries-lit fit``),
   run by pytest in a subprocess; skipped with the reason when ``deepspeed`` does not import.

The models are built in code at SmolLM2-135M's shape (no weights, no hub); see docs/gpu_check.md
for the wheels to carry to a machine without network.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

#: SmolLM2-135M's shape (its config.json); the benchmark's model on a GPU.
SMOLLM2_SHAPE: dict[str, int] = {
    "hidden_size": 576,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "intermediate_size": 1536,
    "vocab_size": 49152,
}
#: the dry mode's shape (CPU, seconds).
DRY_SHAPE: dict[str, int] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 512,
}

#: Peak dense bf16 tensor-core FLOP/s (no sparsity) by device-name pattern, most specific first.
PEAK_BF16_FLOPS: list[tuple[str, str, float]] = [
    (r"\bH100\b.*\bPCIe\b", "H100 PCIe", 756e12),
    (r"\bH100\b.*\bNVL\b", "H100 NVL", 835e12),
    (r"\bH100\b", "H100 SXM", 989e12),
    (r"\bGH200\b", "GH200", 989e12),
    (r"\bH200\b", "H200", 989e12),
    (r"\bH20\b", "H20", 148e12),
    (r"\bB200\b", "B200", 2250e12),
    (r"\bA100\b", "A100", 312e12),
    (r"\bA800\b", "A800", 312e12),
    (r"\bL40S\b", "L40S", 362e12),
    (r"\bL40\b", "L40", 181e12),
    (r"\bL4\b", "L4", 121e12),
    (r"\bA10\b", "A10", 125e12),
    (r"\bRTX 6000 Ada\b", "RTX 6000 Ada", 364e12),
]

#: modules the check imports beyond the Python standard library -> the package that provides them
#: (``datasets`` and its dependencies: ``aries_lit.data`` imports it when ``aries_lit.modules`` loads).
REQUIRED = {
    "torch": "torch",
    "lightning": "lightning",
    "transformers": "transformers",
    "torchmetrics": "torchmetrics",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "yaml": "pyyaml",
    "datasets": "datasets",
    "pyarrow": "pyarrow",
    "pandas": "pandas",
    "dateutil": "python-dateutil",
    "dill": "dill",
    "multiprocess": "multiprocess",
    "xxhash": "xxhash",
    "jsonargparse": "jsonargparse",
    "docstring_parser": "docstring-parser",
    "typeshed_client": "typeshed-client",
}
#: needed only to run the CUDA tests.
REQUIRED_FOR_TESTS = {"pytest": "pytest", "iniconfig": "iniconfig", "pluggy": "pluggy"}


@dataclass
class Check:
    """One row of the final table."""

    name: str
    status: str
    figure: str = ""


class MissingPackage(RuntimeError):
    """A module the check needs does not import."""


def missing_packages(modules: dict[str, str]) -> list[str]:
    """The packages (distribution names) of ``modules`` that are not installed."""
    return [pkg for mod, pkg in modules.items() if importlib.util.find_spec(mod) is None]


def missing_message(packages: list[str]) -> str:
    """The one-line error for missing packages."""
    names = " ".join(packages)
    return (
        f"gpu_check: missing package(s): {', '.join(packages)}; install the carried wheels with "
        f"`pip install --no-index --find-links wheels/ {names}` (docs/gpu_check.md)"
    )


def peak_flops(device_name: str, override_tflops: float | None = None) -> tuple[float, str] | None:
    """Peak dense bf16 FLOP/s of ``device_name`` and where it came from (``None`` if unknown)."""
    if override_tflops is not None:
        return override_tflops * 1e12, "--peak_tflops"
    for pattern, label, flops in PEAK_BF16_FLOPS:
        if re.search(pattern, device_name):
            return flops, label
    return None


def model_flops_per_step(params: int, tokens: int, passes: int) -> float:
    """FLOPs of one step by the issue's count (as ``benchmarks/bench_utils.model_flops``):
    ``passes * params * tokens``, ``passes`` = 6 for the policy's forward+backward, + 2 for a
    reference forward on the same tokens. ``tokens`` are all processed (prompt + response) tokens;
    attention-score FLOPs are not counted, and neither is the LM head's saving on prompt tokens
    (``aries_lit.modules.logprobs`` runs it on response positions only)."""
    return float(passes) * params * tokens


def render_table(checks: list[Check]) -> str:
    """The final table: check, status, figure."""
    rows = [("check", "status", "figure")] + [(c.name, c.status, c.figure) for c in checks]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, f"{'-' * w0}  {'-' * w1}  {'-' * 6}")
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    """1 if any check failed, else 0 (skips do not fail)."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# --------------------------------------------------------------------------- environment
def check_environment(dry: bool) -> Check:
    import torch

    cuda = torch.version.cuda or "none"
    if dry:
        return Check("environment", PASS, f"cpu (dry), torch {torch.__version__}, CUDA build {cuda}")
    if not torch.cuda.is_available():
        return Check("environment", FAIL, f"no CUDA device (torch {torch.__version__}, CUDA build {cuda})")
    name = torch.cuda.get_device_name(0)
    if not torch.cuda.is_bf16_supported():
        return Check("environment", FAIL, f"{name} has no bf16 support")
    return Check("environment", PASS, f"{name}, torch {torch.__version__}, CUDA {cuda}")


# --------------------------------------------------------------------------- benchmark
def build_model_dir(out: Path, shape: dict[str, int], seed: int = 0) -> Path:
    """A random-init Llama of ``shape`` with the package's tiny BPE tokenizer, in HF format."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from aries_lit.models import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(out)
    if shape["vocab_size"] < len(tokenizer):
        raise ValueError(f"vocab_size {shape['vocab_size']} < the tokenizer's {len(tokenizer)} tokens")
    config = LlamaConfig(
        **shape,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(out))
    return out


def random_batches(
    views: tuple[str, ...],
    n: int,
    batch_size: int,
    prompt_len: int,
    response_len: int,
    vocab_size: int,
    reference: bool,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``n`` batches in :class:`aries_lit.data.ViewCollator`'s layout: random tokens, every view
    a full row of ``prompt_len + response_len`` tokens (``ref.<view>`` log-probs when ``reference``)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    rows, length = len(views) * batch_size, prompt_len + response_len
    loss_mask = torch.zeros(rows, length, dtype=torch.bool)
    loss_mask[:, prompt_len:] = True
    batches = []
    for _ in range(n):
        batch: dict[str, Any] = {
            "input_ids": torch.randint(0, vocab_size, (rows, length), generator=gen),
            "attention_mask": torch.ones(rows, length, dtype=torch.long),
            "loss_mask": loss_mask.clone(),
            "views": list(views),
            "batch_size": batch_size,
        }
        if reference:  # precomputed reference log-probs: their values do not change the cost
            for view in views:
                batch[f"ref.{view}"] = -response_len * 10.0 + torch.randn(batch_size, generator=gen)
        batches.append(batch)
    return batches


def run_benchmark(args: argparse.Namespace, work: Path) -> list[Check]:
    """Train ``PreferenceModule`` a few steps on random batches; the train, throughput and MFU rows."""
    import lightning as L
    import torch

    from aries_lit.losses import LOSSES
    from aries_lit.modules import PreferenceModule

    name = f"train {args.loss}"
    loss = LOSSES.build(args.loss)
    views = loss.required_views()
    precomputed = args.reference == "precomputed"
    uses_reference = loss.requires_reference()
    shape = DRY_SHAPE if args.dry else SMOLLM2_SHAPE
    label = "tiny (dry)" if args.dry else "SmolLM2-135M"
    print(
        f"gpu_check: {args.loss}, random-init {label}-shape Llama, {args.batch_size} pairs/step", flush=True
    )
    model_dir = build_model_dir(work / "model", shape)
    steps = args.warmup_steps + args.steps
    batches = random_batches(
        views,
        steps,
        args.batch_size,
        args.prompt_len,
        args.response_len,
        shape["vocab_size"],
        precomputed and uses_reference,
    )
    module = PreferenceModule(model=str(model_dir), loss=loss, lr=1e-5, schedule="constant", warmup_ratio=0.0)
    timer = make_step_timer(args.warmup_steps, time.monotonic() + args.bench_budget_s)
    trainer = L.Trainer(
        accelerator="cpu" if args.dry else "gpu",
        devices=1,
        precision=args.precision,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(module, train_dataloaders=loader)

    policy = module.policy
    moved = any(
        not torch.equal(p.detach().cpu(), timer.before[n])
        for n, p in policy.named_parameters()
        if n in timer.before
    )
    finite = bool(timer.losses) and all(math.isfinite(x) for x in timer.losses)
    done = len(timer.losses)
    train_ok = finite and moved and done == steps
    why = (
        ""
        if train_ok
        else ("; non-finite loss" if not finite else "; weights did not move" if not moved else "")
    )
    if done < steps:
        why += f"; stopped by --budget_s after {done}/{steps} steps"
    precision = {"32-true": "fp32"}.get(args.precision, args.precision)
    losses = f"{timer.losses[0]:.4f} -> {timer.losses[-1]:.4f}" if timer.losses else "none"
    checks = [Check(name, PASS if train_ok else FAIL, f"{done} steps {precision}, loss {losses}{why}")]

    if not timer.times:
        return checks + [Check("throughput", FAIL, "no timed step"), Check("MFU", FAIL, "no timed step")]
    rows = len(views) * args.batch_size
    tokens = rows * (args.prompt_len + args.response_len)
    seconds = sum(timer.times) / len(timer.times)
    tps = tokens / seconds
    params = sum(p.numel() for p in {id(p): p for p in policy.parameters()}.values())  # tied once
    ref_passes = 2 if uses_reference and not precomputed else 0
    passes = 6 + ref_passes
    flops = model_flops_per_step(params, tokens, passes)
    reference = "no reference" if not uses_reference else f"reference {args.reference}"
    mem = ""
    if not args.dry:
        mem = f", peak mem {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    checks.append(
        Check(
            "throughput",
            PASS,
            f"{tps:,.0f} tok/s ({len(timer.times)} timed steps x {tokens} tokens = {rows} rows"
            f" x {args.prompt_len}+{args.response_len}, {seconds * 1e3:.0f} ms/step{mem})",
        )
    )
    peak = None if args.dry and args.peak_tflops is None else peak_flops(_device_name(args), args.peak_tflops)
    detail = (
        f"{passes}N FLOPs/token ({len(views)} views: policy fwd+bwd 6N, {reference}"
        f"{' fwd 2N' if ref_passes else ''}; N={params / 1e6:.1f}M params)"
    )
    achieved = flops / seconds
    if peak is None:
        why = "dry mode, CPU" if args.dry else f"unknown GPU '{_device_name(args)}': pass --peak_tflops"
        checks.append(Check("MFU", SKIP, f"{achieved / 1e12:.3f} TFLOP/s; no peak ({why}); {detail}"))
    else:
        value, source = peak
        checks.append(
            Check(
                "MFU",
                PASS,
                f"{100 * achieved / value:.1f}% = {achieved / 1e12:.3g} of {value / 1e12:.4g} TFLOP/s"
                f" ({source}); {detail}",
            )
        )
    return checks


def _device_name(args: argparse.Namespace) -> str:
    import torch

    return "cpu" if args.dry else torch.cuda.get_device_name(0)


def make_step_timer(warmup: int, deadline: float) -> Any:
    """A Lightning callback that times each optimizer step after ``warmup`` (CUDA-synchronised),
    records the losses and a layer's starting weights, and stops training at ``deadline``
    (``time.monotonic()``)."""
    import torch
    from lightning.pytorch.callbacks import Callback

    def sync(pl_module: Any) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []
            self.times: list[float] = []
            self.before: dict[str, torch.Tensor] = {}
            self._start = 0.0

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            params = list(pl_module.policy.named_parameters())
            self.before = {n: p.detach().cpu().clone() for n, p in params[1:3]}  # a layer's weights

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            sync(pl_module)
            self._start = time.perf_counter()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            sync(pl_module)
            elapsed = time.perf_counter() - self._start
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(float(loss))
            if len(self.losses) > warmup:
                self.times.append(elapsed)
            if time.monotonic() > deadline:
                trainer.should_stop = True

    return StepTimer()


def release_gpu_memory(dry: bool) -> None:
    """Free the benchmark's cached CUDA memory before the tests' subprocesses take the GPU."""
    import gc

    gc.collect()
    if not dry:
        import torch

        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- CUDA-only tests
def cuda_test_files() -> list[Path]:
    """Test files skipped without CUDA (``pytest.mark.skipif(not torch.cuda.is_available() ...)``)."""
    marker = re.compile(r"skipif\(\s*not torch\.cuda\.is_available\(\)")
    return [p for p in sorted((REPO / "tests").glob("test_*.py")) if marker.search(p.read_text())]


def deepspeed_import_error(timeout_s: float = 120.0) -> str | None:
    """``None`` if ``import deepspeed`` works (in a subprocess), else the error's last line."""
    if importlib.util.find_spec("deepspeed") is None:
        return "deepspeed is not installed"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import deepspeed"], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return f"import deepspeed took over {timeout_s:.0f} s"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"import deepspeed exited {proc.returncode}"


def run_bounded(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> tuple[int | None, str]:
    """Run ``cmd`` in its own process group; its exit code (``None`` on timeout, when the whole
    group is killed: pytest's ``aries-lit fit`` children too) and its stdout+stderr."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def pytest_summary(output: str) -> str:
    """pytest's final counts line (``4 passed in 85.21s``), or ``""``."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip("= ").strip()
        if re.search(r"\b(passed|failed|skipped|error|errors|no tests ran)\b", line):
            return line
    return ""


def run_cuda_tests(args: argparse.Namespace, deadline: float) -> list[Check]:
    """One row per CUDA-only test file, run by pytest in a subprocess bounded by ``deadline``."""
    files = cuda_test_files()
    if not files:
        return [Check("cuda tests", SKIP, "no CUDA-only test file under tests/")]
    checks = []
    ds_error = None if args.dry else deepspeed_import_error()
    for path in files:
        name = f"pytest {path.name}"
        if args.dry:
            checks.append(Check(name, SKIP, "dry mode: CPU only (CUDA-only tests need a GPU)"))
            continue
        if "deepspeed" in path.name and ds_error:
            checks.append(Check(name, SKIP, f"deepspeed does not import: {ds_error}"))
            continue
        missing = missing_packages(REQUIRED_FOR_TESTS)
        if missing:
            checks.append(Check(name, FAIL, missing_message(missing)))
            continue
        left = deadline - time.monotonic()
        if left < 30:
            checks.append(Check(name, FAIL, "no time left in --budget_s"))
            continue
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(path)]
        if args.tests_k:
            cmd += ["-k", args.tests_k]
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        )
        start = time.monotonic()
        print(f"gpu_check: {' '.join(cmd[1:])} (timeout {left:.0f} s)", flush=True)
        returncode, output = run_bounded(cmd, REPO, env, left)
        print(f"--- {name} ({time.monotonic() - start:.0f} s) ---")
        print(output[-6000:])
        if returncode is None:
            checks.append(Check(name, FAIL, f"timed out after {left:.0f} s (--budget_s)"))
            continue
        summary = pytest_summary(output) or f"pytest exited {returncode}"
        if returncode == 0:
            status = SKIP if re.search(r"\bskipped\b", summary) and "passed" not in summary else PASS
        elif returncode == 5:
            status = SKIP
        else:
            status = FAIL
        checks.append(Check(name, status, summary))
    return checks


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--dry", action="store_true", help="CPU, tiny shape, fp32, 2 steps; CUDA tests skipped")
    p.add_argument(
        "--loss", default="dpo", help="a registered preference loss (dpo, aries, ...); default dpo"
    )
    p.add_argument(
        "--reference",
        choices=("on_the_fly", "precomputed"),
        default="on_the_fly",
        help="reference log-probs: a frozen copy run every step (+2N FLOPs/token, the default) or\n"
        "precomputed and carried by the batch (PreferenceModule's precompute_reference)",
    )
    p.add_argument(
        "--precision",
        default=None,
        help="Lightning precision (GPU bf16-mixed, dry 32-true; bf16-mixed works on CPU)",
    )
    p.add_argument("--batch_size", type=int, default=None, help="pairs per step (GPU 8, dry 2)")
    p.add_argument("--prompt_len", type=int, default=None, help="prompt tokens per row (GPU 256, dry 16)")
    p.add_argument("--response_len", type=int, default=None, help="response tokens per row (GPU 256, dry 16)")
    p.add_argument("--steps", type=int, default=None, help="timed optimizer steps (GPU 20, dry 1)")
    p.add_argument("--warmup_steps", type=int, default=None, help="untimed first steps (GPU 3, dry 1)")
    p.add_argument(
        "--peak_tflops", type=float, default=None, help="peak dense bf16 TFLOP/s (overrides the table)"
    )
    p.add_argument("--budget_s", type=float, default=450.0, help="wall-clock bound of the whole check (s)")
    p.add_argument("--bench_budget_s", type=float, default=180.0, help="bound of the benchmark's steps (s)")
    p.add_argument("--skip_tests", action="store_true", help="do not run the CUDA-only test files")
    p.add_argument(
        "--tests_k", default=None, help="pytest -k expression for the CUDA tests (e.g. 'not offload')"
    )
    p.add_argument("--workdir", default=None, help="where to write the built model (default: a temp dir)")
    args = p.parse_args(argv)
    gpu = {
        "precision": "bf16-mixed",
        "batch_size": 8,
        "prompt_len": 256,
        "response_len": 256,
        "steps": 20,
        "warmup_steps": 3,
    }
    dry = {
        "precision": "32-true",
        "batch_size": 2,
        "prompt_len": 16,
        "response_len": 16,
        "steps": 1,
        "warmup_steps": 1,
    }
    for key, value in (dry if args.dry else gpu).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    deadline = start + args.budget_s
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    missing = missing_packages(REQUIRED)
    if importlib.util.find_spec("aries_lit") is None:
        missing.append("aries-lit")
    if missing:
        print(missing_message(missing), file=sys.stderr)
        return 2
    try:
        import aries_lit.modules  # noqa: F401  (imports datasets, torchmetrics, ...)
    except ModuleNotFoundError as err:
        print(missing_message([err.name or str(err)]), file=sys.stderr)
        return 2

    checks = [check_environment(args.dry)]
    if checks[0].status == PASS:
        args.bench_budget_s = min(args.bench_budget_s, args.budget_s)
        try:
            with tempfile.TemporaryDirectory(prefix="gpu_check-", dir=args.workdir) as tmp:
                checks += run_benchmark(args, Path(tmp))
        except Exception as err:  # a failed check is a row of the table, not a traceback
            import traceback

            traceback.print_exc()
            checks.append(
                Check(f"train {args.loss}", FAIL, f"{type(err).__name__}: {str(err).splitlines()[0]}")
            )
        finally:
            release_gpu_memory(args.dry)
    if args.skip_tests:
        checks.append(Check("cuda tests", SKIP, "--skip_tests"))
    elif checks[0].status == PASS:
        checks += run_cuda_tests(args, deadline)
    elapsed = time.monotonic() - start
    within = elapsed <= args.budget_s * 1.1  # the benchmark's last step may run past it
    checks.append(
        Check("wall time", PASS if within else FAIL, f"{elapsed:.0f} s (budget {args.budget_s:.0f} s)")
    )
    print()
    print(render_table(checks))
    code = exit_code(checks)
    print(f"\ngpu_check: {'FAILED' if code else 'all checks passed or skipped'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
