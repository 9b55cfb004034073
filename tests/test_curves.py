"""Training curves: Lightning CSV logs (resumed runs too) read by step and plotted per panel."""

from __future__ import annotations

from pathlib import Path

from aries_lit.pipeline.curves import plot_training_curves, read_metrics


def _log(folder: Path, text: str) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(text)


def test_resumed_logs_are_joined_by_step_and_plotted(tmp_path):
    logs = tmp_path / "train" / "lightning_logs"
    header = "epoch,step,train/loss,train/rewards/accuracy_step,train/rewards/accuracy_epoch\n"
    _log(logs / "version_0", header + "0,0,0.69,0.5,\n0,1,0.60,0.75,\n0,1,,,0.6\n")
    _log(logs / "version_1", "epoch,step,train/loss,train/refine/v_l_to_w_step,val/loss\n"
                             "0,2,0.55,0.1,\n0,3,0.50,nan,0.52\n")  # fmt: skip
    metrics = read_metrics(tmp_path / "train")
    assert metrics == {
        "train/loss": [(0, 0.69), (1, 0.60), (2, 0.55), (3, 0.50)],
        "train/refine/v_l_to_w": [(2, 0.1)],  # nan is left out
        "train/rewards/accuracy": [(0, 0.5), (1, 0.75)],  # the _epoch column is left out
        "val/loss": [(3, 0.52)],
    }
    path = plot_training_curves(tmp_path / "train", tmp_path / "curves.png", title="stage 'x'")
    assert path == tmp_path / "curves.png" and path.read_bytes().startswith(b"\x89PNG")


def test_no_log_no_plot(tmp_path):
    assert plot_training_curves(tmp_path, tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
