"""One refinement template per run: declared once, filled into collection, training and
evaluation; a deliberate difference is kept and printed; disagreeing parts get a note."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from aries_lit.pipeline.iterate import iterate
from aries_lit.pipeline.run_template import apply_run_template, template_uses
from aries_lit.pipeline.specs import StageSpec, parse_stages
from aries_lit.prompts.templates import RefinementTemplate

REPO = Path(__file__).resolve().parents[1]
DATA = {"class_path": "aries_lit.data.PreferenceDataModule", "init_args": {"train": "x"}}


def _stages(sr_template: str | None = None, data_template: str | None = None) -> tuple[StageSpec, ...]:
    sr = {"class_path": "sequential_refinement", "init_args": {"num_candidates": 2}}
    if sr_template:
        sr["init_args"]["template"] = sr_template
    own = {"template": data_template} if data_template else {}
    data = {**DATA, "init_args": {**DATA["init_args"], **own}}
    return parse_stages([
        {"name": "offline", "collect": {"prompts": "p", "generator": {"class_path": "parallel_sampling"}},
         "fit": {"data": data}},
        {"name": "iter1", "collect": {"prompts": "p", "generator": sr}, "fit": {"data": data}},
    ])  # fmt: skip


def test_the_declared_template_fills_every_part_that_sets_none(capsys):
    stages, evaluation = apply_run_template("short", _stages(), {"tasks": []})
    uses = dict(template_uses(stages, evaluation))
    assert uses == {
        "stage 'offline' training views": "short",
        "stage 'iter1' collection": "short",
        "stage 'iter1' training views": "short",
        "evaluation": "short",
    }
    assert "template" not in stages[0].collect.generator.init_args  # PS: no use
    assert stages[1].collect.generator.init_args == {"num_candidates": 2, "template": "short"}
    assert capsys.readouterr().err == ""
    unfilled = _stages()
    apply_run_template("short", unfilled, {})
    assert "template" not in unfilled[1].collect.generator.init_args  # inputs untouched (new specs)


def test_a_part_that_sets_another_template_keeps_it_and_is_printed(capsys):
    stages, _ = apply_run_template("short", _stages(sr_template="paper"), None, where="iterate")
    assert stages[1].collect.generator.init_args["template"] == "paper"
    assert stages[1].fit["data"]["init_args"]["template"] == "short"
    err = capsys.readouterr().err
    assert "iterate: stage 'iter1' collection uses the template 'paper', not the run's 'short'" in err


def test_undeclared_parts_that_disagree_get_a_note_and_agreeing_ones_none(capsys):
    apply_run_template(None, _stages(sr_template="short", data_template="short"), None)
    assert capsys.readouterr().err == ""
    apply_run_template(None, _stages(sr_template="short"), {"tasks": []}, where="run")
    err = capsys.readouterr().err
    assert "run: the refinement template differs between parts" in err
    assert "stage 'iter1' collection: short" in err and "evaluation: paper (default)" in err


def test_the_run_template_reaches_the_generator_and_the_trainer(tiny_model_dir, tmp_path):
    fit = {
        "trainer": {"max_steps": 1, "logger": False},
        "data": {"init_args": {"format": "trl", "on_error": "raise", "limit": None}},
    }
    stage = {
        "name": "iter1",
        "fit_config": str(REPO / "configs/tiny/aries_offline.yaml"),
        "fit": fit,
        "collect": {
            "prompts": {"class_path": "arithmetic", "init_args": {"split": "train", "count": 3, "seed": 1}},
            "generator": {"class_path": "sequential_refinement",
                          "init_args": {"num_candidates": 2, "temperature": 0.7, "max_new_tokens": 6}},
            "selector": {"class_path": "rule", "init_args": {"skip_truncated": False}},
        },
    }  # fmt: skip
    iterate(str(tmp_path / "run"), str(tiny_model_dir), [stage], progress=False, template="short")
    stage_dir = tmp_path / "run" / "00-iter1"
    manifest = json.loads((stage_dir / "candidates" / "manifest.json").read_text())
    assert manifest["settings"]["template"] == RefinementTemplate.from_spec("short").text
    fit_config = yaml.safe_load((stage_dir / "fit_config.yaml").read_text())
    assert fit_config["data"]["init_args"]["template"] == "short"
    saved = yaml.safe_load((stage_dir / "train" / "config.yaml").read_text())  # what LightningCLI built
    assert saved["data"]["init_args"]["template"] == "short"
