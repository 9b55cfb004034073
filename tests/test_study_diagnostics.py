"""The study report's diagnostics: IFEval's instruction figures by constraint type, the training
drift of each stage read from its CSV log, and the compute of each arm."""

from __future__ import annotations

import csv

import pytest
import torch

from aries_lit.modules.policy import log_ratio_metrics
from aries_lit.pipeline.curves import training_summary
from aries_lit.pipeline.study import _ifeval_results
from aries_lit.pipeline.study_diagnostics import (
    TRAINED_TYPES,
    compute_section,
    instructions_section,
    training_section,
)
from aries_lit.pipeline.study_report import build_report
from aries_lit.pipeline.study_results import StudyResults


def test_log_ratio_metrics_are_policy_minus_reference_of_the_direct_views():
    policy = {"direct/chosen": torch.tensor([-3.0, -5.0]), "direct/rejected": torch.tensor([-4.0, -4.0]),
              "refine/chosen": torch.tensor([-1.0, -1.0])}  # fmt: skip
    reference = {"direct/chosen": torch.tensor([-4.0, -4.0]), "direct/rejected": torch.tensor([-3.0, -6.0])}
    out = log_ratio_metrics(policy, reference)
    assert sorted(out) == ["logratio/direct/chosen", "logratio/direct/rejected"]
    assert out["logratio/direct/chosen"].tolist() == [1.0, -1.0]
    assert out["logratio/direct/rejected"].tolist() == [-1.0, 2.0]


def test_training_summary_means_the_first_and_last_quarter_of_the_steps(tmp_path):
    log = tmp_path / "train" / "lightning_logs" / "version_0"
    log.mkdir(parents=True)
    with (log / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        ratio = "train/logratio/direct/chosen_step"
        w.writerow(["epoch", "step", "train/loss_step", ratio, "train/loss_epoch", "train/other_step"])
        for step in range(8):
            w.writerow([0, step, 8 - step, step / 2, "", 1])
        w.writerow([0, 7, "", "", 4.5, ""])  # the epoch row: not a step value
    out = training_summary(tmp_path / "train")
    assert out["train/loss"] == {"start": 7.5, "end": 1.5, "steps": 8}  # steps 0-1 and 6-7
    assert out["train/logratio/direct/chosen"] == {"start": 0.25, "end": 3.25, "steps": 8}
    assert "train/other" not in out
    assert training_summary(tmp_path / "nothing") == {}


def _ifeval_task(inst: list[float], by_type: dict, length: list[float]) -> dict:
    return {"n": 2, "kind": "ifeval", "items": {"a": "01", "b": "00"}, "length": length,
            "direct": {"mean": 0.0}, "sr": {"mean": 0.5},
            "ifeval": {"inst_strict": inst, "prompt_loose": [0.0, 0.5], "inst_loose": inst,
                       "by_type": by_type, "oracle_feedback": False}}  # fmt: skip


def _result(arm: str, seed: int, tasks: dict, **extra) -> dict:
    return {"arm": arm, "seed": seed, "index": 1, "stage": "iter1", "key": f"k-{arm}-{seed}", "tasks": tasks,
            **extra}  # fmt: skip


def test_ifeval_results_keep_the_instruction_level_curve_and_the_type_counts():
    def turn(i):
        return {
            "inst_strict": {"mean": 0.1 * i},
            "prompt_loose": {"mean": 0.2 * i},
            "inst_loose": {"mean": 0.3 * i},
        }

    comma = "punctuation:no_comma"
    metrics = {"curve": [turn(0), turn(1)], "oracle_feedback": False,
               "by_type": {"direct": {comma: {"followed": 1, "n": 4, "rate": 0.25}},
                           "last": {comma: {"followed": 3, "n": 4, "rate": 0.75}}}}  # fmt: skip
    out = _ifeval_results(metrics)
    assert out["inst_strict"] == [0.0, 0.1] and out["prompt_loose"] == [0.0, 0.2]
    assert out["by_type"] == {
        "direct": {"punctuation:no_comma": [1, 4]},
        "last": {"punctuation:no_comma": [3, 4]},
    }


def test_instructions_section_splits_trained_from_never_trained_types_and_pools_seeds():
    trained, held = "keywords:existence", "punctuation:no_comma"
    assert trained in TRAINED_TYPES and held not in TRAINED_TYPES
    by_type = {"direct": {trained: [1, 4], held: [0, 2], "language:response_language": [1, 2]},
               "last": {trained: [3, 4], held: [1, 2], "language:response_language": [1, 2]}}  # fmt: skip
    results = [
        _result("aries", 0, {"ife": _ifeval_task([0.2, 0.4], by_type, [100.0, 80.0])}),
        _result("aries", 1, {"ife": _ifeval_task([0.4, 0.6], by_type, [200.0, 120.0])}),
    ]
    text = "\n".join(instructions_section(StudyResults.of(results)))
    # inst strict pooled over seeds 0.3 -> 0.5; trained 2/8 -> 6/8 with 4 per seed; never trained
    # (held out + absent types) 2/8 -> 4/8; length 150 -> 100
    cells = ["aries", "01-iter1", "2", "30.0 -> 50.0", "0.0 -> 50.0", "25.0 -> 75.0 (4)", "25.0 -> 50.0 (4)",
             "150 -> 100"]  # fmt: skip
    assert "| " + " | ".join(cells) + " |" in text


def test_training_and_compute_sections():
    training = {"train/loss": {"start": 0.69, "end": 0.5, "steps": 8},
                "train/logps/direct/chosen": {"start": -80.0, "end": -82.5, "steps": 8},
                "train/logratio/direct/chosen": {"start": 0.0, "end": -0.5, "steps": 8},
                "train/logratio/direct/rejected": {"start": 0.0, "end": -2.0, "steps": 8},
                "train/rewards/accuracy": {"start": 0.5, "end": 0.75, "steps": 8}}  # fmt: skip
    gen = {"prompts": 100, "candidates": 400, "completion_tokens": 38000}
    results = [
        _result("aries", 0, {}, training=training, generation=gen,
                data={"train/records": 25, "train/view_tokens": 500_000, "max_epochs": 2}),
        _result("aries_copy", 0, {}, training=training),  # a shared stage: the same key is listed once
    ]  # fmt: skip
    results[1]["key"] = results[0]["key"]
    text = "\n".join(training_section(StudyResults.of(results)))
    assert (
        "| aries | 0 | iter1 | 0.69 -> 0.50 | -80.00 -> -82.50 | 0.00 -> -0.50 | 0.00 -> -2.00 | 75.0 |"
        in text
    )
    assert "aries_copy" not in text
    text = "\n".join(compute_section(StudyResults.of(results)))
    assert "| aries | 0 | iter1 380 | 4.0 | 0.04 | 1.00 |" in text


@pytest.mark.parametrize("with_diagnostics", [True, False])
def test_the_report_has_the_sections_only_when_the_results_have_the_figures(with_diagnostics):
    by_type = {"direct": {"keywords:existence": [1, 2]}, "last": {"keywords:existence": [2, 2]}}
    task = _ifeval_task([0.5, 1.0], by_type, [10.0, 10.0])
    if not with_diagnostics:
        task.pop("ifeval")
    results = [
        {"arm": "aries", "seed": 0, "index": 0, "stage": "base", "key": "base", "tasks": {"ife": task}}
    ]
    report = build_report(StudyResults.of(results))
    assert ("## ife: instructions, Direct -> SR" in report) is with_diagnostics
    assert "## ife: Direct and SR by arm and stage" in report
