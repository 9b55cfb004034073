"""A quiet console: hide the known third-party tips and deprecation notices, keep real warnings.

Lightning, torch and jsonargparse print messages on every normal ``fit`` that our users can do
nothing about (an advert for a cloud logger, a deprecation inside Lightning's own code, a warning
about the empty validation list aries_lit hands Lightning on purpose). :func:`quiet_known_noise`
hides exactly those, each matched by its message (and, for warnings, the module that raises it);
every other warning and log line is shown as before. ``ARIES_LIT_VERBOSE=1`` turns it off.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

VERBOSE_ENV = "ARIES_LIT_VERBOSE"

_LIGHTNING = r"(lightning|pytorch_lightning|lightning_fabric)(\.|$)"

# (message regex matched at the start of the warning's text, category, module regex or None)
KNOWN_NOISY_WARNINGS: tuple[tuple[str, type[Warning], str | None], ...] = (
    # Lightning's default ``logger=True`` falls back to CSVLogger and tells the user to
    # ``pip install lightning[extra]`` for TensorBoard: aries_lit's metrics go to CSV (and to
    # ``data_stats.json`` / the run folder) by design, so the install advice is not actionable.
    (r"Starting from v1\.9\.0, `tensorboardX` has been removed", UserWarning, _LIGHTNING),
    # ``aries-lit fit`` always adds ``--ckpt_path last`` so that rerunning a killed command
    # resumes; on the first run there is no ``last.ckpt`` yet, which is expected, and Lightning's
    # HINT (``save_last=True``) is already set by our checkpoint callback.
    (r'\.fit\(ckpt_path="last"\) is set, but there is no last checkpoint', UserWarning, _LIGHTNING),
    # aries_lit returns an empty *list* as the validation loader when there is no validation
    # data; Lightning warns that its length is zero. An empty ``DataLoader`` (a real mistake:
    # "Total length of `DataLoader` ...") is still shown.
    (r"Total length of `list` across ranks is zero", UserWarning, _LIGHTNING),
    # torch deprecated ``LeafSpec``; Lightning's own ``_pytree`` helper still uses it (a
    # Lightning-internal call, nothing in aries_lit or the user's config can change it).
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", Warning, None),
    (r"LeafSpec is deprecated", Warning, None),
    # jsonargparse 4.x deprecations ("skip_none parameter / ``instantiate_classes`` /
    # ``ArgumentParser.add_instantiator`` was deprecated in v4.49.0 and will be removed in
    # v5.0.0") raised where LightningCLI calls them, and the banner jsonargparse prints before
    # the first one: Lightning's code, not ours or the user's. The same notice raised from
    # aries_lit's own code is still shown (the module must be Lightning's).
    (
        r"(?s)\s*\S.*? was deprecated in v4\.[\d.]+ and will be removed in v5\.",
        DeprecationWarning,
        _LIGHTNING,
    ),
    (r"\s*By default only one JsonargparseDeprecationWarning per type", DeprecationWarning, _LIGHTNING),
)

# Log records (Lightning's ``rank_zero_info``) hidden by message regex, matched at the start.
KNOWN_NOISY_LOG_MESSAGES: tuple[str, ...] = (
    # Adverts for Lightning's cloud products (litlogger, litmodels): "💡 Tip: For seamless cloud
    # logging ..." / "... cloud uploads and versioning ...". Not about the run.
    r"💡 Tip:",
    # The accelerator inventory printed on every Trainer start ("GPU available: False, used:
    # False", "TPU available: False, using: 0 TPU cores", HPU on Gaudi). The device a run uses is
    # in its config; a GPU that is present but unused still gets Lightning's separate warning
    # "GPU available but not used", which is kept.
    r"(GPU|TPU|HPU|IPU) available: \S+(\s\(\w+\))?, us(ed|ing):",
)

# The loggers Lightning's ``rank_zero_info`` writes through (lightning_utilities picks one of
# them at import time; the standalone ``pytorch_lightning`` / ``lightning_fabric`` names too).
_RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
)


class KnownNoiseFilter(logging.Filter):
    """Drops a log record whose message starts with one of :data:`KNOWN_NOISY_LOG_MESSAGES`."""

    _patterns = tuple(re.compile(p) for p in KNOWN_NOISY_LOG_MESSAGES)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.match(message) for p in self._patterns)


def verbose() -> bool:
    """``ARIES_LIT_VERBOSE`` set to anything but ``""``, ``0``, ``false`` or ``no``."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def quiet_known_noise() -> bool:
    """Install the filters for the known third-party noise (idempotent); returns whether it did
    (``False`` under ``ARIES_LIT_VERBOSE=1``). Other warnings and log records are untouched."""
    if verbose():
        return False
    for message, category, module in KNOWN_NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module or "")
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, KnownNoiseFilter) for f in logger.filters):
            logger.addFilter(KnownNoiseFilter())
    return True
