"""A DataModule that collects its own preference pairs (generate + select) before training.

It lives in ``pipeline`` (not ``data``) because it runs the collection stage,
:mod:`aries_lit.pipeline.collect`; ``fit`` takes it as
``--data.class_path aries_lit.pipeline.collecting.CollectingDataModule``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aries_lit.core.errors import SettingsError
from aries_lit.data.datamodule import PreferenceDataModule


class CollectingDataModule(PreferenceDataModule):
    """Couples a generator and a selector: prompts + the current model -> pairs -> batches.

    Collection runs in ``prepare_data`` (once per node, rank 0) and resumes a killed run;
    the pairs then load like any TRL-format file.

    Args:
        prompts: a prompt source spec (see ``aries-lit generate``).
        generator: a generator name or ``{class_path: ..., init_args: {...}}`` (default SR).
        selector: a selector name or spec (default ``rule``).
        collect_dir: where candidates and pairs go (default ``<default_root_dir>/collect``).
        collect_model: the model that generates (default: the LightningModule's starting model).
        **kwargs: every other :class:`PreferenceDataModule` option (``val``, ``format``,
            ``template``, ``batch_size``, ``on_error``, ``num_workers``, ...); ``train`` is the
            collected pairs file, so it is not one.
    """

    def __init__(
        self,
        prompts: dict[str, Any] | str,
        generator: dict[str, Any] | str = "sequential_refinement",
        selector: dict[str, Any] | str = "rule",
        collect_dir: str | None = None,
        collect_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "train" in kwargs:
            raise SettingsError(
                "CollectingDataModule: 'train' is the pairs file it collects; remove it (collect_dir "
                "says where the pairs go)"
            )
        super().__init__(train="", **kwargs)
        # LightningCLI hands nested class specs (a generator's backend) over as jsonargparse
        # Namespaces; the registries build from plain mappings
        self.prompts, self.generator, self.selector = _plain(prompts), _plain(generator), _plain(selector)
        self.collect_dir, self.collect_model = collect_dir, collect_model

    def _dir(self) -> Path:
        if self.collect_dir:
            return Path(self.collect_dir)
        return Path(self.trainer.default_root_dir if self.trainer else ".") / "collect"

    def _model(self) -> str:
        if self.collect_model:
            return self.collect_model
        module = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        if module is None:
            raise RuntimeError("CollectingDataModule needs collect_model when used outside a Trainer")
        return module.model_name

    def prepare_data(self) -> None:
        from aries_lit.pipeline.collect import generate, select

        out = self._dir()
        generate(self._model(), self.prompts, self.generator, str(out / "candidates"))
        select(str(out / "candidates"), self.prompts, self.selector, str(out / "pairs.jsonl"))

    def setup(self, stage: str | None = None) -> None:
        self.hparams.train = str(self._dir() / "pairs.jsonl")
        super().setup(stage)


def _plain(spec: Any) -> Any:
    """``spec`` with every jsonargparse ``Namespace`` in it turned into a plain dict."""
    if hasattr(spec, "as_dict") and callable(spec.as_dict):
        return _plain(spec.as_dict())
    if isinstance(spec, dict):
        return {k: _plain(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_plain(v) for v in spec]
    return spec
