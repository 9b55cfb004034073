"""Training curves of a stage: the Lightning CSV log of its ``fit`` plotted as one PNG.

``aries-lit iterate`` calls :func:`plot_training_curves` after each stage's training and writes
``<stage>/curves.png``: the loss and its parts, the reward and refinement accuracies, and the
reward and refinement margins, by optimizer step (validation metrics as markers). A resumed run's
logs (``version_0``, ``version_1``, ...) are joined by step. A run without a CSV log (``logger:
false``) gets no plot.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

#: the panels: a title and the metric-name fragments that put a metric in it (first match wins)
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss",)),
    ("accuracy (fraction of pairs)", ("accuracy",)),
    ("margins", ("margin", "refine/v_")),
)


def read_metrics(train_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` from every ``metrics.csv`` under ``train_dir`` (Lightning's
    ``CSVLogger``), step-level values only (``*_epoch`` columns are left out), sorted by step."""
    series: dict[str, dict[int, float]] = {}
    for path in sorted(Path(train_dir).rglob("metrics.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    step = int(float(row.get("step") or "nan"))
                except ValueError:
                    continue
                for key, value in row.items():
                    if key in ("epoch", "step") or not value or key.endswith("_epoch"):
                        continue
                    try:
                        number = float(value)
                    except ValueError:
                        continue
                    if math.isfinite(number):
                        series.setdefault(key.removesuffix("_step"), {})[step] = number
    return {k: sorted(v.items()) for k, v in sorted(series.items())}


def plot_training_curves(train_dir: str | Path, out: str | Path, title: str = "") -> Path | None:
    """Plot the metrics of :func:`read_metrics` into ``out`` (PNG); ``None`` when there are none."""
    series = read_metrics(train_dir)
    panels = [(name, {k: v for k, v in series.items() if _panel(k) == name}) for name, _ in PANELS]
    panels = [(name, metrics) for name, metrics in panels if metrics]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), dpi=100, squeeze=False)
    for ax, (name, metrics) in zip(axes[0], panels):
        for key, points in metrics.items():
            steps, values = zip(*points)
            style = {"marker": "o", "linestyle": "--"} if key.startswith("val") else {"linewidth": 1.2}
            ax.plot(steps, values, label=key, **style)
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path)
    plt.close(fig)
    return path


def _panel(metric: str) -> str | None:
    for name, fragments in PANELS:
        if any(f in metric for f in fragments):
            return name
    return None


#: the training metrics a study keeps per stage (:func:`training_summary`): the loss, the chosen
#: answers' log-probability, the drift from the reference and the pair accuracy
SUMMARY_METRICS = (
    "train/loss",
    "train/logps/direct/chosen",
    "train/logps/direct/rejected",
    "train/logratio/direct/chosen",
    "train/logratio/direct/rejected",
    "train/rewards/accuracy",
)


def training_summary(train_dir: str | Path, metrics: tuple[str, ...] = SUMMARY_METRICS) -> dict[str, dict]:
    """``{metric: {"start", "end", "steps"}}``: the mean of each logged step value over the first and
    the last quarter of the steps (at least one step each) of a stage's CSV training log, for the
    ``metrics`` it logged; ``{}`` without a log."""
    out = {}
    for name, points in read_metrics(train_dir).items():
        if name not in metrics or not points:
            continue
        k = max(1, len(points) // 4)
        values = [v for _, v in points]
        out[name] = {
            "start": round(sum(values[:k]) / k, 4),
            "end": round(sum(values[-k:]) / k, 4),
            "steps": len(points),
        }
    return out


__all__ = ["PANELS", "SUMMARY_METRICS", "plot_training_curves", "read_metrics", "training_summary"]
