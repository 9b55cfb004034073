"""``scripts/gpu_check.py``: its dry mode end to end (a subprocess on CPU), a failing check's exit
code, the missing-package error, and the table, peak-FLOPs and FLOP-count helpers."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (registered: its dataclass looks itself up in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    """The final table's rows: check -> (status, figure)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.split()[:3] == ["check", "status", "figure"])
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        name, rest = line.split("  ", 1)
        status, _, figure = rest.strip().partition("  ")
        rows[name.strip()] = (status, figure.strip())
    return rows


def test_dry_mode_runs_the_benchmark_on_cpu_and_prints_one_table():
    proc = _run("--dry")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert list(rows) == [
        "environment",
        "train dpo",
        "throughput",
        "MFU",
        "pytest test_deepspeed.py",
        "wall time",
    ]
    assert rows["environment"][0] == "PASS" and "cpu (dry)" in rows["environment"][1]
    status, figure = rows["train dpo"]
    # first loss log 2: the policy starts as the reference
    assert status == "PASS" and figure.startswith("2 steps fp32, loss 0.6931 -> ")
    status, figure = rows["throughput"]
    assert status == "PASS" and float(figure.split(" tok/s")[0].replace(",", "")) > 0
    assert "4 rows x 16+16" in figure  # 2 pairs x (chosen, rejected)
    status, figure = rows["MFU"]
    assert status == "SKIP" and "dry mode" in figure and "8N FLOPs/token" in figure
    assert rows["pytest test_deepspeed.py"] == ("SKIP", "dry mode: CPU only (CUDA-only tests need a GPU)")
    assert rows["wall time"][0] == "PASS"
    assert proc.stdout.rstrip().endswith("gpu_check: all checks passed or skipped")


def test_a_failing_check_is_a_table_row_and_a_nonzero_exit():
    proc = _run("--dry", "--loss", "no_such_loss")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table(proc.stdout)
    status, figure = rows["train no_such_loss"]
    assert status == "FAIL" and "unknown loss 'no_such_loss'" in figure
    assert "throughput" not in rows and rows["environment"][0] == "PASS"
    assert proc.stdout.rstrip().endswith("gpu_check: FAILED")


def test_the_gpu_mode_without_cuda_fails_at_the_environment_row():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the GPU mode would run for minutes")
    proc = _run("--budget_s", "60")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert list(rows) == ["environment", "wall time"]
    status, figure = rows["environment"]
    assert status == "FAIL" and figure.startswith("no CUDA device")


def test_a_missing_package_is_one_line_naming_it(gpu_check, monkeypatch, capsys):
    monkeypatch.setitem(gpu_check.REQUIRED, "no_such_module_for_gpu_check", "no-such-wheel")
    assert gpu_check.main(["--dry"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "missing package(s): no-such-wheel" in err
    assert "pip install --no-index --find-links wheels/ no-such-wheel" in err


def test_exit_code_fails_on_any_failed_row_and_not_on_skips(gpu_check):
    Check = gpu_check.Check
    ok = [Check("environment", "PASS", "x"), Check("MFU", "SKIP", "no peak")]
    assert gpu_check.exit_code(ok) == 0
    assert gpu_check.exit_code([*ok, Check("pytest test_deepspeed.py", "FAIL", "1 failed")]) == 1
    table = gpu_check.render_table([*ok, Check("train dpo", "FAIL", "boom")]).splitlines()
    assert table[0].split() == ["check", "status", "figure"]
    assert table[-1].split() == ["train", "dpo", "FAIL", "boom"]
    assert table[0].index("status") == table[2].index("PASS")  # aligned columns


@pytest.mark.parametrize(
    ("device", "label", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 989),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756),
        ("NVIDIA H200", "H200", 989),
        ("NVIDIA A100-SXM4-80GB", "A100", 312),
        ("NVIDIA L4", "L4", 121),
        ("NVIDIA L40S", "L40S", 362),
        ("NVIDIA A10", "A10", 125),
    ],
)
def test_peak_flops_table(gpu_check, device, label, tflops):
    assert gpu_check.peak_flops(device) == (tflops * 1e12, label)


def test_peak_flops_unknown_gpu_and_override(gpu_check):
    assert gpu_check.peak_flops("NVIDIA A10G") is None  # not the A10's figure
    assert gpu_check.peak_flops("NVIDIA A10G", 70.0) == (70e12, "--peak_tflops")


def test_model_flops_count_policy_and_reference_passes(gpu_check):
    # the count: 6N per trained token (policy fwd+bwd) + 2N per reference-forward token
    assert gpu_check.model_flops_per_step(135_000_000, 8192, 8) == 8 * 135e6 * 8192


def test_random_batches_follow_the_view_collator_layout(gpu_check):
    views = ("direct/chosen", "direct/rejected")
    (batch,) = gpu_check.random_batches(views, 1, 3, 5, 4, 50, reference=True)
    assert batch["input_ids"].shape == (6, 9) and int(batch["input_ids"].max()) < 50
    assert batch["loss_mask"].sum(1).tolist() == [4] * 6 and not batch["loss_mask"][:, :5].any()
    assert batch["views"] == list(views) and batch["batch_size"] == 3
    assert batch["ref.direct/chosen"].shape == (3,) and "ref.direct/rejected" in batch


def test_cuda_only_test_files_and_pytest_summary(gpu_check):
    found = gpu_check.cuda_test_files()
    assert REPO / "tests" / "test_deepspeed.py" in found
    assert Path(__file__).resolve() not in found  # it skips one test *with* CUDA, not without
    out = "....\n==== 3 passed, 1 skipped in 85.21s ====\n"
    assert gpu_check.pytest_summary(out) == "3 passed, 1 skipped in 85.21s"


def _alive(pid: int) -> bool:
    """Running (a killed process left unreaped, a zombie, is not)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_bounded_kills_the_whole_process_group_on_timeout(gpu_check, tmp_path):
    child = (
        "import subprocess, sys, time; "
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(g.pid, flush=True); time.sleep(60)"
    )
    returncode, output = gpu_check.run_bounded([sys.executable, "-c", child], tmp_path, dict(os.environ), 3)
    assert returncode is None
    grandchild = int(output.split()[0])
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild outlived the timeout")
    assert gpu_check.run_bounded([sys.executable, "-c", "print('ok')"], tmp_path, dict(os.environ), 30) == (
        0,
        "ok\n",
    )
