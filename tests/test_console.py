"""A normal ``fit`` prints no third-party tips or deprecation notices; real warnings still show."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from aries_lit.core.console import _RANK_ZERO_LOGGERS, KnownNoiseFilter, quiet_known_noise

REPO = Path(__file__).resolve().parents[1]

# What Lightning / torch print on a tiny CPU ``fit`` unless filtered.
KNOWN_NOISE = (
    "💡 Tip",
    "litlogger",
    "GPU available:",
    "TPU available:",
    "tensorboardX",
    "pip install lightning[extra]",
    'ckpt_path="last") is set, but there is no last checkpoint',
    "Total length of `list` across ranks is zero",
    "LeafSpec",
)


def _fit(tiny_model_dir: Path, tmp_path: Path, name: str, verbose: bool) -> subprocess.Popen:
    data = tmp_path / "pairs.jsonl"
    if not data.exists():
        rows = [{"prompt": f"Q{i}", "chosen": "A good answer", "rejected": "B"} for i in range(4)]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if k not in ("ARIES_LIT_DEBUG", "ARIES_LIT_VERBOSE")}
    env["OMP_NUM_THREADS"] = "1"
    if verbose:
        env["ARIES_LIT_VERBOSE"] = "1"
    args = [
        "fit",
        "--config",
        "configs/tiny/dpo_offline.yaml",
        "--model.init_args.model",
        str(tiny_model_dir),
        "--data.init_args.train",
        str(data),
        "--data.init_args.format",
        "trl",
        "--trainer.default_root_dir",
        str(tmp_path / name),
        "--trainer.max_steps",
        "2",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "aries_lit.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_normal_fit_prints_no_third_party_tips_and_verbose_shows_them(tiny_model_dir, tmp_path):
    # both runs at once: the test takes one fit's time
    quiet, loud = (_fit(tiny_model_dir, tmp_path, n, v) for n, v in (("quiet", False), ("loud", True)))
    quiet_out, _ = quiet.communicate(timeout=300)
    loud_out, _ = loud.communicate(timeout=300)
    assert quiet.returncode == 0, quiet_out
    assert loud.returncode == 0, loud_out
    assert [n for n in KNOWN_NOISE if n in quiet_out] == [], quiet_out
    # the filters hide something real: with ARIES_LIT_VERBOSE=1 the noise is back
    assert [n for n in KNOWN_NOISE if n in loud_out], loud_out
    # what the user needs is still there
    assert "Hugging Face model saved to" in quiet_out and "`Trainer.fit` stopped" in quiet_out


@pytest.fixture
def no_log_filters():
    yield
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, KnownNoiseFilter)]:
            logger.removeFilter(f)


def test_real_warnings_still_show(monkeypatch, no_log_filters):
    monkeypatch.delenv("ARIES_LIT_VERBOSE", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert quiet_known_noise() is True
        warnings.warn("something real", stacklevel=1)
        warnings.warn_explicit(
            "Total length of `DataLoader` across ranks is zero. Please make sure this was your intention.",
            UserWarning,
            "data.py",
            1,
            module="lightning.pytorch.utilities.data",
        )
        # the known noise, raised where Lightning raises it
        warnings.warn_explicit(
            "Total length of `list` across ranks is zero. Please make sure this was your intention.",
            UserWarning,
            "data.py",
            1,
            module="lightning.pytorch.utilities.data",
        )
        warnings.warn_explicit(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...",
            FutureWarning,
            "_pytree.py",
            21,
            module="lightning.pytorch.utilities._pytree",
        )
        # a jsonargparse deprecation: hidden where LightningCLI triggers it, kept from our code
        skip_none = "\n    skip_none parameter was deprecated in v4.49.0 and will be removed in v5.0.0."
        for module in ("lightning.pytorch.cli", "aries_lit.cli"):
            warnings.warn_explicit(skip_none, DeprecationWarning, f"{module}.py", 1, module=module)
    messages = [str(w.message) for w in caught]
    assert "something real" in messages
    assert [w.filename for w in caught if "skip_none" in str(w.message)] == ["aries_lit.cli.py"]
    assert any("`DataLoader` across ranks is zero" in m for m in messages)
    assert not any("`list` across ranks" in m or "LeafSpec" in m for m in messages), messages


def test_lightning_tips_are_hidden_and_its_real_messages_kept(monkeypatch, caplog, no_log_filters):
    monkeypatch.delenv("ARIES_LIT_VERBOSE", raising=False)
    quiet_known_noise()
    quiet_known_noise()  # idempotent: one filter per logger
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert sum(isinstance(f, KnownNoiseFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO):
        logger.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger")
        logger.info("GPU available: True (cuda), used: True")
        logger.info("TPU available: False, using: 0 TPU cores")
        logger.info("GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`.")
        logger.info("`Trainer.fit` stopped: `max_steps=2` reached.")
    assert caplog.messages == [
        "GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`.",
        "`Trainer.fit` stopped: `max_steps=2` reached.",
    ]


def test_verbose_turns_the_filtering_off(monkeypatch, no_log_filters):
    monkeypatch.setenv("ARIES_LIT_VERBOSE", "1")
    assert quiet_known_noise() is False
    assert not any(
        isinstance(f, KnownNoiseFilter) for n in _RANK_ZERO_LOGGERS for f in logging.getLogger(n).filters
    )
