"""Faults that must lose nothing: two runs on one folder, a full disk, a torn checkpoint
(docs/faults.md has the table; each row names its test here)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from aries_lit import cli
from aries_lit.core import disk
from aries_lit.core.checkpoints import AtomicModelCheckpoint, checkpoint_loads, set_aside_torn_checkpoints
from aries_lit.core.errors import DiskSpaceError, FolderInUseError
from aries_lit.core.locks import LOCK_NAME, FolderLock, folder_lock, is_primary_process

HOLD = (
    "import sys, time; from aries_lit.core.locks import FolderLock; "
    "FolderLock(sys.argv[1], 'generate').acquire(); print('held', flush=True); time.sleep(60)"
)


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_naming_the_folder_and_holder(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "out")
    try:
        with pytest.raises(FolderInUseError) as err:
            FolderLock(tmp_path / "out").acquire()
        text = str(err.value)
        assert str(tmp_path / "out") in text and f"process {proc.pid} on " in text and "generate" in text
        assert "\n" not in text
    finally:
        proc.kill()
        proc.wait()
    # the holder died without releasing: the next run takes the lock over, with a note
    lock = FolderLock(tmp_path / "out").acquire()
    lock.release()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path, capsys) -> None:
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"host": "h", "pid": 999999, "what": "fit", "since": "then"}))
    with folder_lock(folder, "stage") as lock:
        assert lock is not None
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "taking over the lock left by process 999999 on h" in capsys.readouterr().err
    assert (folder / LOCK_NAME).read_text() == ""  # released: no holder to report next time


def test_folder_lock_is_reentrant_and_other_ranks_lock_nothing(tmp_path, monkeypatch) -> None:
    with folder_lock(tmp_path, "stage") as outer:
        with folder_lock(tmp_path, "select") as inner:  # a step inside the stage writes there too
            assert outer is not None and inner is None
        with pytest.raises(FolderInUseError):  # but another lock on it (another run) is refused
            FolderLock(tmp_path).acquire()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_primary_process()
    with folder_lock(tmp_path / "x") as lock:
        assert lock is None and not (tmp_path / "x").exists()


def test_generate_on_a_folder_in_use_is_one_line(tmp_path, capsys) -> None:
    out = tmp_path / "gen"
    with FolderLock(out, "generate"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["generate", "--model", str(tmp_path / "m"), "--prompts", "{class_path: arithmetic,"
                      " init_args: {count: 4}}", "--out_dir", str(out)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"aries-lit: error: {out} is in use by process {os.getpid()}")
    assert not (out / "candidates.jsonl").exists()


def _trainer(tmp_path: Path, fail: bool) -> SimpleNamespace:
    def save_checkpoint(path: str, weights_only: bool = False) -> None:
        if fail:
            Path(path).write_bytes(b"PK\x03\x04 torn")
            raise OSError(errno.ENOSPC, "No space left on device", path)
        torch.save({"step": 2}, path)

    return SimpleNamespace(
        save_checkpoint=save_checkpoint,
        is_global_zero=True,
        strategy=SimpleNamespace(barrier=lambda: None),
        global_step=2,
        loggers=[],
    )


def test_a_full_disk_mid_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    torch.save({"step": 1}, target)
    callback = AtomicModelCheckpoint(dirpath=str(tmp_path))
    with pytest.raises(DiskSpaceError) as err:
        callback._save_checkpoint(_trainer(tmp_path, fail=True), str(target))
    assert f"writing {target}; the previous checkpoint is kept" in str(err.value)
    assert torch.load(target)["step"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    callback._save_checkpoint(_trainer(tmp_path, fail=False), str(target))
    assert torch.load(target)["step"] == 2 and not list(tmp_path.glob("*.part"))


def test_a_torn_checkpoint_is_set_aside_not_deleted(tmp_path: Path) -> None:
    good, torn = tmp_path / "epoch=0-step=4.ckpt", tmp_path / "last.ckpt"
    torch.save({"step": 4}, good)
    torn.write_bytes(good.read_bytes()[:100])  # a zip with no central directory
    (tmp_path / "last.ckpt.part").write_bytes(b"x")
    assert checkpoint_loads(good) and not checkpoint_loads(torn)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(torn)
    notes = set_aside_torn_checkpoints(tmp_path)
    assert len(notes) == 1 and "set aside as last.ckpt.torn-" in notes[0]
    assert "resuming from epoch=0" in notes[0]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == good.name and names[1].startswith("last.ckpt.torn-") and len(names) == 2


def test_too_little_free_space_is_one_line_naming_need_and_free(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 2 * 1024**2)
    need = disk.training_bytes(parameters=1_000_000, trainable=1_000_000)
    assert need == 2 * (4_000_000 + 8_000_000) + 4_000_000
    with pytest.raises(DiskSpaceError) as err:
        disk.require_free_space(tmp_path / "ckpt", need, "training")
    assert str(tmp_path / "ckpt") in str(err.value)
    assert "needs about 29.4 MiB free, 2.0 MiB is free" in str(err.value)  # 28e6 B + 10%
    disk.require_free_space(tmp_path, 1024, "training")  # enough: no error
    monkeypatch.setenv("ARIES_LIT_SKIP_SPACE_CHECK", "1")
    disk.require_free_space(tmp_path, need, "training")


def test_enospc_anywhere_is_one_line_and_other_os_errors_are_not_hidden(monkeypatch, capsys) -> None:
    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/run/pairs.jsonl")

    monkeypatch.setattr(cli, "_main", full)
    with pytest.raises(SystemExit):
        cli.main(["select"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "aries-lit: error: no space left on the device writing /data/run/pairs.jsonl; finished work is"
        " kept: free some space and rerun the same command, it resumes"
    ]

    def other(argv):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(cli, "_main", other)
    with pytest.raises(OSError):
        cli.main(["select"])
