"""`aries-lit study`: seeds and stage keys, shared stages, kill and resume, the report from result files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from aries_lit.core.checkpoints import hf_model_complete
from aries_lit.core.errors import SettingsError
from aries_lit.core.part_spec import PartSpec
from aries_lit.pipeline.specs import StageSpec
from aries_lit.pipeline.study import Study, eval_key, find_recorded_evaluation, seeded_stage, stage_key
from aries_lit.pipeline.study_report import build_report, final_summary, load_results, write_report
from aries_lit.pipeline.study_results import StudyResults
from aries_lit.pipeline.study_stats import accuracy_summary, paired_difference, pooled_items

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- stage identity


def _stage(config: dict) -> StageSpec:
    return StageSpec.from_config(config, "stages[0]")


def test_seeded_stage_sets_training_and_collection_seeds():
    stage = _stage(
        {
            "name": "iter1",
            "collect": {"prompts": "p", "generator": "parallel_sampling"},
            "fit": {"a": 1, "data": {"class_path": "x"}},
        }
    )
    seeded = seeded_stage(stage, 7)
    assert seeded.fit["seed_everything"] == 7 and seeded.fit["data"]["init_args"] == {"seed": 7}
    assert seeded.collect.generator == PartSpec("parallel_sampling", {"seed": 7})
    assert seeded.collect.generator.config() == {"class_path": "parallel_sampling", "init_args": {"seed": 7}}
    assert "seed_everything" not in stage.fit and stage.collect.generator.bare  # the input is not changed


def test_stage_key_depends_on_settings_and_input_not_name():
    a = seeded_stage(_stage({"name": "sft", "fit": {"lr": 1}}), 0)
    assert stage_key(a, "base:m") == stage_key(replace(a, name="other"), "base:m")
    assert stage_key(a, "base:m") != stage_key(a, "base:n")
    assert stage_key(a, "base:m") != stage_key(
        seeded_stage(_stage({"name": "sft", "fit": {"lr": 1}}), 1), "base:m"
    )
    assert stage_key(a, "base:m") != stage_key(
        seeded_stage(_stage({"name": "sft", "fit": {"lr": 2}}), 0), "base:m"
    )


def _collect_stage(prompts, generator, selector) -> dict:
    collect = {"prompts": prompts, "generator": generator, "selector": selector}
    fit = {"model": {"class_path": "x.Module", "init_args": {"lr": 1}}}
    return {"name": "iter1", "collect": collect, "fit": fit}


def test_the_spec_form_does_not_move_the_stage_key():
    """``{class_path, init_args}``, options beside ``class_path``, a bare name and a part written
    with its defaults spelt out give one key (and one shared candidates folder): keys hash the
    resolved settings. The ``name:`` forms themselves are refused."""
    from aries_lit.pipeline.study import collect_key

    vllm = {"dtype": "float32", "max_model_len": 1024}
    dialect = _collect_stage(
        {"class_path": "arithmetic", "init_args": {"split": "train", "count": 96}},
        {"class_path": "parallel_sampling",
         "init_args": {"num_candidates": 4, "backend": {"class_path": "vllm", "init_args": vllm}}},
        {"class_path": "reward_model", "init_args": {"model": "rm", "batch_size": 16}},
    )  # fmt: skip
    beside = _collect_stage(
        {"class_path": "arithmetic", "split": "train", "count": 96},
        {"class_path": "PS", "num_candidates": 4, "backend": {"class_path": "vllm", **vllm}},
        {"class_path": "reward_model", "model": "rm", "batch_size": 16},
    )
    stages = [seeded_stage(_stage(s), 3) for s in (dialect, beside)]
    assert len({stage_key(s, "base:m") for s in stages}) == 1
    assert len({collect_key(s.collect) for s in stages}) == 1
    bare = seeded_stage(_stage(_collect_stage("arithmetic", "parallel_sampling", "verifier")), 3)
    mapping = seeded_stage(
        _stage(_collect_stage("arithmetic", "parallel_sampling", {"class_path": "verifier"})), 3
    )
    spelt = seeded_stage(
        _stage(_collect_stage("arithmetic", {"class_path": "parallel_sampling", "init_args": {"top_p": 1.0}},
                              {"class_path": "verifier", "init_args": {"checker": "builtin"}})), 3
    )  # fmt: skip
    assert stage_key(bare, "base:m") == stage_key(mapping, "base:m") == stage_key(spelt, "base:m")
    no_selector = _collect_stage("arithmetic", "parallel_sampling", "rule")
    del no_selector["collect"]["selector"]  # none named: the rule selector selects
    unset = seeded_stage(_stage(no_selector), 3)
    rule = seeded_stage(_stage(_collect_stage("arithmetic", "parallel_sampling", "rule")), 3)
    assert stage_key(unset, "base:m") == stage_key(rule, "base:m") != stage_key(bare, "base:m")
    for flat in ({"name": "arithmetic", "count": 96}, {"name": "arithmetic", "init_args": {"count": 96}}):
        with pytest.raises(SettingsError, match=r"^stages\[0\] \('iter1'\)\.collect\.prompts: write "
                           r"\{class_path: arithmetic, init_args: \{\.\.\.\}\}"):  # fmt: skip
            _stage(_collect_stage(flat, "parallel_sampling", "verifier"))


def test_a_changed_default_moves_the_keys(monkeypatch):
    """A default that changes anywhere in a stage (a generator's, its backend's, the loss's inside
    the module's) or in the evaluation makes a new key: a stage or an evaluation run under the old
    default is never reused."""
    from aries_lit.generators.backends.vllm import VLLMBackend
    from aries_lit.generators.parallel_sampling import ParallelSampling
    from aries_lit.losses.preference import DPOLoss

    fit = {"model": {"class_path": "aries_lit.modules.PreferenceModule", "init_args": {"loss": "dpo"}}}
    generator = {"class_path": "parallel_sampling", "init_args": {"backend": "vllm"}}
    collect = {"prompts": "arithmetic", "selector": "verifier", "generator": generator}
    stage = seeded_stage(_stage({"name": "iter1", "fit": fit, "collect": collect}), 0)
    task = {"class_path": "arithmetic", "init_args": {"split": "test"}}
    evaluation = {"tasks": [task], "generator": {"class_path": "sequential_refinement"}}
    before, before_eval = stage_key(stage, "base:m"), eval_key("m", evaluation)

    def changed(func, **new) -> Any:
        """``func`` (an ``__init__``) with other keyword defaults, restored after the test."""
        import inspect

        params = inspect.signature(func).parameters
        defaults = tuple(new.get(p.name, p.default) for p in params.values()
                         if p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD)  # fmt: skip
        return defaults

    for owner, option, value in (
        (ParallelSampling, "top_p", 0.9),
        (VLLMBackend, "max_model_len", 999),
        (DPOLoss, "beta", 0.5),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(owner.__init__, "__defaults__", changed(owner.__init__, **{option: value}))
            assert stage_key(stage, "base:m") != before, (owner, option)
        assert stage_key(stage, "base:m") == before
    from aries_lit.evaluation.evaluate import evaluate_checkpoints as func

    with monkeypatch.context() as patch:
        patch.setattr(func, "__defaults__", changed(func, confidence=0.9))
        assert eval_key("m", evaluation) != before_eval
    assert eval_key("m", evaluation) == before_eval


def test_keys_are_the_same_in_another_process():
    """No key holds a memory address or a set order: a fresh interpreter computes the same keys
    for the shipped study (every arm's stages and the evaluation)."""
    code = (
        "import json; from aries_lit.pipeline.study import Study;"
        "from aries_lit.pipeline.study_spec import StudySpec;"
        "s = Study(StudySpec.from_file('configs/study/cpu.yaml'));"
        "print(json.dumps([s.eval_key] + [k for a in s.arms for _, k in s.arm_stages(a, 0, model='m')]))"
    )
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    ).stdout  # fmt: skip
    first = run()
    assert first == run() and len(json.loads(first)) > 10


#: the base model's folder on the machine that ran ``configs/study/cpu.yaml``: the stages that
#: collect with ``model: base`` hash it (``Study`` expands ``~`` when the folder exists)
STUDY_BASE_MODEL_DIR = "/root/.cache/aries_lit/smollm2-135m-instruct"


def test_shipped_study_config_keys_match_the_committed_result_files(monkeypatch):
    """The stage keys of ``configs/study/cpu.yaml``, computed as the runner does, are the ``key``
    of every committed result file in ``docs/study/cpu`` (they name the study's stage folders: a
    change of configs or of :func:`stage_key` that moves them would rerun finished stages), and
    each evaluated file's ``eval_key`` is the shipped evaluation settings'."""
    from aries_lit.core.configs import load_run_config

    monkeypatch.chdir(REPO)
    config = load_run_config("configs/study/cpu.yaml")
    study = Study(
        config["base_model"], config["arms"], config["evaluation"], progress=False,
        template=config["template"],
    )  # fmt: skip
    computed = {}
    for arm in study.arms:
        for seed in arm["seeds"]:
            for index, (stage, key) in enumerate(study.arm_stages(arm, seed, STUDY_BASE_MODEL_DIR), start=1):
                computed[(arm["name"], seed, index, stage["name"])] = key
    checked = 0
    evaluated_under = study.eval_key  # the evaluation with the study's template filled in
    for path in sorted((REPO / config["results_dir"]).glob("*/seed*/*.json")):
        result = json.loads(path.read_text())
        # evaluated under the shipped settings: a fresh machine reuses these evaluations
        assert not result["tasks"] or result.get("eval_key") == evaluated_under, path
        where = (result["arm"], result["seed"], result["index"], result["stage"])
        if result["index"] == 0 or where not in computed:
            continue
        assert computed[where] == result["key"], (path, computed[where], result["key"])
        checked += 1
    assert checked >= 10  # aries and iterative_dpo seed 0 (4 stages each) and aries_rm at least


def _arm_file(tmp_path: Path, text: str, name: str = "arm.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_bad_arms_are_refused_with_the_arm_and_field(tmp_path):
    ok = _arm_file(tmp_path, "stages:\n  - {name: sft, fit: {}}\n")
    with pytest.raises(ValueError, match=r"arms\[1\]: arm name 'a' is used twice"):
        Study("m", [{"name": "a", "config": ok}, {"name": "a", "config": ok}], {})
    with pytest.raises(ValueError, match=r"arms\[0\]: unknown field\(s\) \['seed'\]"):
        Study("m", [{"name": "a", "config": ok, "seed": 1}], {})
    with pytest.raises(ValueError, match=r"field 'seeds' must be a non-empty list of integers"):
        Study("m", [{"name": "a", "config": ok, "seeds": []}], {})
    bad = _arm_file(
        tmp_path,
        "stages:\n  - {name: sft, collect: {prompts: p, model: base, bogus: 1}, fit: {}}\n",
        "b.yaml",
    )
    with pytest.raises(
        ValueError,
        match=r"arms\[0\] \('a'\): .*b.yaml: stages\[0\] \('sft'\): unknown field\(s\) \['bogus'\]",
    ):
        Study("m", [{"name": "a", "config": bad}], {})
    with pytest.raises(ValueError, match="evaluation: 'checkpoints' is set by the study"):
        Study("m", [{"name": "a", "config": ok}], {"checkpoints": ["x"]})


def test_an_arm_can_stop_early_and_override_its_config(tmp_path):
    three = _arm_file(tmp_path, "stages:\n  - {name: sft, fit: {lr: 1}}\n  - {name: offline, fit: {lr: 1}}\n"
                                "  - {name: iter1, fit: {lr: 1}}\n")  # fmt: skip
    arm = {"name": "a", "config": three, "until": "offline", "overrides": {"stages.*.fit.lr": 2}}
    (study_arm,) = Study("m", [arm], {}).arms
    assert [(s["name"], s["fit"]["lr"]) for s in study_arm["stages"]] == [("sft", 2), ("offline", 2)]
    with pytest.raises(ValueError, match=r"\('a'\): field 'until': unknown stage 'iter9'; stages are sft"):
        Study("m", [{**arm, "until": "iter9"}], {})
    with pytest.raises(ValueError, match=r"arms\[0\] \('a'\): override 'stages.\*.fitt.lr' matched nothing"):
        Study("m", [{**arm, "overrides": {"stages.*.fitt.lr": 2}}], {})
    with pytest.raises(ValueError, match="eval_stages: must be 'all' or 'last', got 'some'"):
        Study("m", [arm], {}, eval_stages="some")


def test_eval_key_follows_the_settings_not_the_spec_form():
    task = {"class_path": "arithmetic", "init_args": {"split": "test", "count": 300}, "label": "a"}
    backend = {"class_path": "vllm", "init_args": {"dtype": "float32"}}
    gen = {"class_path": "sequential_refinement", "init_args": {"temperature": 0.0, "backend": backend}}
    ev = {"tasks": [task], "num_refinements": 3, "generator": gen}
    flat = {"tasks": [{"class_path": "arithmetic", "split": "test", "count": 300, "label": "a"}],
            "num_refinements": 3, "generator": {"class_path": "sequential_refinement", "temperature": 0.0,
                          "backend": {"class_path": "vllm", "dtype": "float32"}}}  # fmt: skip
    assert eval_key("m", ev) == eval_key("m", flat)
    assert eval_key("m", ev) != eval_key("n", ev)  # the base model's evaluation is stored as "base"
    assert eval_key("m", ev) != eval_key("m", {**ev, "num_refinements": 2})
    hot = {**gen, "init_args": {**gen["init_args"], "temperature": 0.7}}
    assert eval_key("m", ev) != eval_key("m", {**ev, "generator": hot})


def _fake_evaluator(monkeypatch) -> list[str]:
    """``evaluate_checkpoints`` replaced by one that records what it evaluated and writes a report."""
    import aries_lit.evaluation as evaluation

    calls: list[str] = []

    def fake(checkpoints, names, out_dir, progress, **options):
        calls.append(names[0])
        task = {"metrics": {"n": 1, "kind": "verifiable", "model": checkpoints[0]}, "records": []}
        report = {"results": {names[0]: {"tasks": {"t": task}}}}
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "report.json").write_text(json.dumps(report))

    monkeypatch.setattr(evaluation, "evaluate_checkpoints", fake)
    return calls


def test_a_fresh_run_folder_reuses_recorded_evaluations_only_under_the_same_settings(tmp_path, monkeypatch):
    """A machine that lost the run folder still reruns a stage another stage needs, but takes its
    evaluation (and the base model's) from the committed result files when the base model and
    evaluation settings match; other settings, ``reuse_evaluations: false`` or a result file
    without ``eval_key`` evaluate again."""
    calls = _fake_evaluator(monkeypatch)
    monkeypatch.setattr(Study, "run_stage_once", lambda self, stage, key, model: f"{model}/{stage['name']}")
    arm = {"name": "a", "config": _arm_file(tmp_path, "stages:\n  - {name: sft, fit: {lr: 1}}\n")}
    results = tmp_path / "results"
    evaluation = {"tasks": [{"class_path": "arithmetic", "init_args": {"count": 3}}], "num_refinements": 1}

    def run(run_dir: str, **kwargs) -> dict[str, dict]:
        Study("m", [arm], kwargs.pop("evaluation", evaluation), run_dir=str(tmp_path / run_dir),
              results_dir=str(results), progress=False, **kwargs).run()  # fmt: skip
        return {p.name: json.loads(p.read_text()) for p in (results / "a" / "seed0").glob("*.json")}

    first = run("machine1")
    assert len(calls) == 2 and sorted(first) == ["00-base.json", "01-sft.json"]
    assert {r["eval_key"] for r in first.values()} == {eval_key("m", evaluation)}
    key = first["01-sft.json"]["key"]
    found = find_recorded_evaluation(results, key, eval_key("m", evaluation))
    assert found is not None and found[0] == first["01-sft.json"]["tasks"] and found[2].name == "01-sft.json"

    calls.clear()
    assert run("machine2") == first and calls == []  # nothing evaluated again, the same result files
    assert json.loads((tmp_path / f"machine2/eval/{key}/study_summary.json").read_text())["reused_from"]

    assert run("machine3", reuse_evaluations=False) == first and len(calls) == 2
    calls.clear()
    run("machine4", evaluation={**evaluation, "num_refinements": 2})
    assert calls == ["base", key]  # other settings: evaluated, and the files record the new key
    assert find_recorded_evaluation(results, key, eval_key("m", evaluation)) is None

    for path in (results / "a" / "seed0").glob("*.json"):  # files written before eval_key existed
        record = json.loads(path.read_text())
        record.pop("eval_key")
        path.write_text(json.dumps(record))
    calls.clear()
    run("machine5")
    assert calls == ["base", key]


# --------------------------------------------------------------------------- report statistics


def _result(arm: str, seed: int, index: int, stage: str, items: dict[str, str], **extra) -> dict:
    return {"arm": arm, "seed": seed, "index": index, "stage": stage, "key": f"{arm}-{seed}-{index}",
            "tasks": {"t": {"n": len(items), "kind": "verifiable", "items": items}}, **extra}  # fmt: skip


def test_items_are_pooled_over_seeds_and_compared_item_by_item():
    seeds = [_result("a", 0, 1, "s", {"x": "01", "y": "11", "z": "00"}),
             _result("a", 1, 1, "s", {"x": "00", "y": "11", "z": "01", "w": "11"})]  # fmt: skip
    stage = StudyResults.of(seeds).arms["a"][1]
    assert stage.seeds == [0, 1] and stage.label == "01-s" and stage.num_turns("t") == 2
    assert pooled_items(stage, "t", 1) == {"x": 0.5, "y": 1.0, "z": 0.5}  # w is not in every seed
    summary = accuracy_summary(stage, "t", 1)
    assert summary.mean == pytest.approx(2 / 3) and summary.n == 3
    assert summary.ci_low < 2 / 3 < summary.ci_high
    assert summary.seeds == [pytest.approx(2 / 3), pytest.approx(3 / 4)]
    assert pooled_items(stage.only_seeds([1]), "t", 0) == {"x": 0.0, "y": 1.0, "z": 0.0, "w": 1.0}

    same = paired_difference({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.0})
    assert same.mean == 0 and same.p_value == 1.0
    better = {str(i): 1.0 for i in range(40)}
    worse = {str(i): 0.0 if i < 30 else 1.0 for i in range(40)}
    d = paired_difference(better, worse)
    assert d.mean == pytest.approx(0.75) and d.ci_low > 0 and d.p_value < 0.001 and d.n == 40


def test_results_parse_once_into_stages_over_seeds_and_finals_skip_unevaluated_stages():
    records = [_result("a", 0, 0, "base", {"x": "10"}), _result("a", 0, 1, "offline", {}),
               _result("a", 1, 0, "base", {"x": "11"})]  # fmt: skip
    records[1]["tasks"] = {}  # not evaluated
    results = StudyResults.of(records)
    assert list(results.arms["a"]) == [0, 1] and results.arms["a"][0].seeds == [0, 1]
    assert results.scored_tasks == ["t"] and results.final("a", "t").label == "00-base"
    assert results.final("a", "other") is None and results.finals("other") == {}
    assert results.results[0].tasks["t"].correct(0) == {"x": 1.0}
    assert results.results[1].selection == {} and not results.arms["a"][1].has("t")


def test_report_from_result_files(tmp_path):
    items = lambda pattern: {f"i{k}": pattern[k % len(pattern)] for k in range(20)}  # noqa: E731
    rows = [
        _result("aries", 0, 0, "base", items(["10", "00"])),
        _result("aries", 0, 1, "iter1", items(["11", "01"]),
                selection={"groups": 10, "pairs": 4, "skipped/none_correct": 6,
                           "audit": {"chosen": {"finished": 4, "finished_share": 1.0}}},
                timings={"collect_seconds": 3.0, "fit_seconds": 5.0, "eval_seconds": 2.0}),
        _result("idpo", 0, 0, "base", items(["10", "00"])),
        _result("idpo", 0, 1, "iter1", items(["10", "00"])),
    ]  # fmt: skip
    rows[2]["key"] = rows[0]["key"]  # the base evaluation is shared
    for r in rows:
        path = tmp_path / r["arm"] / f"seed{r['seed']}" / f"{r['index']:02d}-{r['stage']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    report = write_report(tmp_path, compare={"treatment": "aries", "baseline": "idpo"}).read_text()
    assert "| aries | 01-iter1 | 50.0 [" in report and "| 100.0 [" in report  # Direct 50, SR 100
    assert "| aries SR - idpo SR | 20 | 100.0 |" in report
    assert "| aries Direct - idpo Direct | 20 | 0.0 |" in report
    assert "| aries: SR >= Direct after the last stage | 50.0 [" in report
    assert "| aries SR > idpo SR, interval excludes 0 | 100.0 [" in report and "| yes |" in report
    assert "| aries | 0 | iter1 | 10 | 4 | 40.0 | none_correct 6 | finished 100.0 |" in report
    assert "| idpo | 0 | base | - | - | - | shared (counted once) |" in report
    assert (tmp_path / "refinement_curves.png").read_bytes().startswith(b"\x89PNG")
    assert build_report(load_results(tmp_path)) == build_report(load_results(tmp_path))  # deterministic

    assert "| aries SR > idpo SR, interval excludes 0 | 100.0 [" in report and "| 0: +100.0 | yes |" in report
    # a baseline still running (only its base finished) is not compared with a finished arm
    (tmp_path / "idpo" / "seed0" / "01-iter1.json").unlink()
    report = write_report(tmp_path, compare={"treatment": "aries", "baseline": "idpo"}).read_text()
    assert "Not compared yet (aries has finished up to 01-iter1, idpo up to 00-base)." in report
    assert "| aries SR > idpo SR, interval excludes 0 | not yet: aries has finished up to 01-iter1" in report
    assert "| pending |" in report and "| aries SR - idpo SR |" not in report

    # stages that were not evaluated (eval_stages: last) are skipped: the last evaluated one counts
    for arm in ("aries", "idpo"):
        unevaluated = _result(arm, 0, 1, "offline", {})
        unevaluated["tasks"] = {}
        path = tmp_path / arm / "seed0" / "01-offline.json"
        path.write_text(json.dumps(unevaluated))
    for arm, pattern in (("aries", ["11", "01"]), ("idpo", ["10", "00"])):
        path = tmp_path / arm / "seed0" / "02-iter1.json"
        path.write_text(json.dumps(_result(arm, 0, 2, "iter1", items(pattern))))
    (tmp_path / "aries" / "seed0" / "01-iter1.json").unlink()
    results = load_results(tmp_path)
    report = build_report(results, compare={"treatment": "aries", "baseline": "idpo"})
    assert "| aries SR - idpo SR | 20 | 100.0 |" in report and "01-offline" not in report.split("## Pair")[0]
    summary = final_summary(results, compare={"treatment": "aries", "baseline": "idpo"})
    lines = summary.splitlines()
    assert lines[1].split() == ["arm", "stage", "seeds", "Direct", "%", "SR", "%", "SR", "-", "Direct"]
    assert lines[2].split() == ["base", "model", "base", "1", "50.0", "0.0", "-50.0"]
    assert lines[3].split() == ["aries", "iter1", "1", "50.0", "100.0", "+50.0"]
    assert lines[4].split() == ["idpo", "iter1", "1", "50.0", "0.0", "-50.0"]
    assert lines[5].startswith("aries SR - idpo SR: 100.0 points, 95% interval [")
    (tmp_path / "idpo" / "seed0" / "02-iter1.json").unlink()
    assert final_summary(load_results(tmp_path), {"treatment": "aries", "baseline": "idpo"}).endswith(
        "aries vs idpo: not compared yet (aries has finished up to 02-iter1, idpo up to 00-base)"
    )

    broken = tmp_path / "idpo" / "seed0" / "01-iter1.json"
    broken.write_text(json.dumps({"arm": "idpo"}))
    with pytest.raises(ValueError, match=r"01-iter1.json: field 'seed' is missing"):
        load_results(tmp_path)


# --------------------------------------------------------------------------- end to end (tiny model)


def _study_config(tmp_path: Path, model_dir: Path) -> Path:
    aries = yaml.safe_load((REPO / "configs" / "study" / "tiny" / "aries.yaml").read_text())
    stages = [aries["stages"][0], aries["stages"][2]]  # sft (offline data from the base) and iter1
    for stage in stages:
        stage["fit_config"] = str(REPO / stage["fit_config"])
        stage["fit"]["checkpoint"] = {"every_n_train_steps": 1}
        stage["collect"]["prompts"]["count"] = 4
    (tmp_path / "aries.yaml").write_text(yaml.safe_dump({"stages": stages}))
    (tmp_path / "no_dpo.yaml").write_text(
        yaml.safe_dump(
            {"base": "aries.yaml", "overrides": {"stages.*.fit.model.init_args.loss.init_args.alpha": 1.0}}
        )
    )
    config = {
        "run_dir": str(tmp_path / "run"),
        "results_dir": str(tmp_path / "results"),
        "base_model": str(model_dir),
        "arms": [
            {"name": "aries", "config": str(tmp_path / "aries.yaml"), "seeds": [0]},
            {"name": "aries_no_dpo", "config": str(tmp_path / "no_dpo.yaml"), "seeds": [0]},
        ],
        "evaluation": {
            "tasks": [{"class_path": "arithmetic", "label": "arith", "init_args": {
                "count": 3, "unique": True, "test_fraction": 0.4, "validation_fraction": 0.2}}],
            "num_refinements": 1, "max_new_tokens": 4, "plots": False,
            "generator": {"class_path": "sequential_refinement", "init_args": {"backend": "transformers"}},
        },
        "compare": {"treatment": "aries", "ablations": ["aries_no_dpo"]},
    }  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_study_shares_stages_resumes_after_a_kill_and_reports(tiny_model_dir, tmp_path):
    config = _study_config(tmp_path, tiny_model_dir)
    cmd = [sys.executable, "-m", "aries_lit.cli", "study", "--config", str(config), "--progress", "false"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run, results = tmp_path / "run", tmp_path / "results"

    # kill the whole process group once the first stage is done (the second one is under way)
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if any(
            json.loads(p.read_text()).get("status") == "done" for p in run.glob("stages/*-sft/manifest.json")
        ):
            break
        time.sleep(0.5)
    assert proc.poll() is None, f"the study ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    stages = sorted(p.name.split("-", 1)[1] for p in (run / "stages").iterdir())
    assert stages == ["iter1", "iter1", "sft"]  # the ablation reused ARIES-SFT
    # finished stages keep their model and drop the resume checkpoint their fit wrote each step
    assert list(run.glob("stages/*/train/checkpoints/*.ckpt")) == []
    assert len(list(run.glob("stages/*/train/checkpoints"))) == 3
    assert all(hf_model_complete(str(p)) for p in run.glob("stages/*/model"))
    sft = json.loads(next((run / "stages").glob("*-sft/manifest.json")).read_text())
    assert sft["status"] == "done" and sft["attempts"] == 1  # not redone after the kill
    for cand in run.rglob("candidates.jsonl"):
        keys = [(r["id"], r["index"]) for r in map(json.loads, cand.read_text().splitlines())]
        assert len(keys) == len(set(keys)) and keys, cand

    a = {p.name: json.loads(p.read_text()) for p in (results / "aries" / "seed0").glob("*.json")}
    b = {p.name: json.loads(p.read_text()) for p in (results / "aries_no_dpo" / "seed0").glob("*.json")}
    assert sorted(a) == sorted(b) == ["00-base.json", "01-sft.json", "02-iter1.json"]
    assert a["01-sft.json"]["key"] == b["01-sft.json"]["key"]
    assert a["02-iter1.json"]["key"] != b["02-iter1.json"]["key"]
    for record in a.values():
        assert len(record["tasks"]["arith"]["items"]) == 3
        assert all(len(v) == 2 for v in record["tasks"]["arith"]["items"].values())
    assert a["02-iter1.json"]["selection"]["groups"] == 4
    # the compute of collection: the shared offline collection's counts too, and the trained tokens
    assert a["01-sft.json"]["generation"]["prompts"] == 4 == a["02-iter1.json"]["generation"]["prompts"]
    assert a["01-sft.json"]["generation"]["completion_tokens"] > 0
    assert a["01-sft.json"]["data"]["train/view_tokens"] > 0
    assert a["02-iter1.json"]["timings"]["fit_seconds"] > 0

    report = (results / "report.md").read_text()
    assert "| aries_no_dpo SR below aries SR |" in report and "| aries | 02-iter1 |" in report
    assert f"`aries-lit study --config {config}`" in report  # the exact command, and how to rebuild
    assert f"`aries-lit study --config {config} --report_only true`" in report
    # the report is rebuilt from the result files alone
    (results / "report.md").unlink()
    only = subprocess.run([*cmd, "--report_only", "true", "--run_dir", str(tmp_path / "gone")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert only.returncode == 0, only.stderr[-2000:]
    assert (results / "report.md").read_text() == report
    assert not (tmp_path / "gone").exists()
    assert "aries_no_dpo  iter1  1" in done.stdout  # the console summary of the last stages

    # eval_stages last: only the base and the last stage are evaluated (here: all cached already)
    last = subprocess.run([*cmd, "--eval_stages", "last", "--results_dir", str(tmp_path / "last")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert last.returncode == 0, last.stderr[-2000:]
    a_last = {p.name: json.loads(p.read_text()) for p in (tmp_path / "last/aries/seed0").glob("*.json")}
    assert a_last["01-sft.json"]["tasks"] == {} and "fit_seconds" in a_last["01-sft.json"]["timings"]
    assert a_last["02-iter1.json"]["tasks"] == a["02-iter1.json"]["tasks"]


def test_a_target_is_not_met_when_one_seed_reverses_another(tmp_path):
    """Seed 0: aries far ahead; seed 1: behind. Pooled over seeds the items' interval excludes 0
    (it treats the seeds as fixed), but the target is not met: the seeds disagree."""
    n = 40
    right, wrong = "11", "00"
    first = lambda m: {f"i{k}": right if k < m else wrong for k in range(n)}  # noqa: E731
    aries = {0: first(n), 1: first(30)}
    idpo = {0: first(0), 1: first(34)}
    for arm, by_seed in (("aries", aries), ("idpo", idpo)):
        for seed, items in by_seed.items():
            r = _result(arm, seed, 1, "iter1", items)
            path = tmp_path / arm / f"seed{seed}" / "01-iter1.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r))
    report = write_report(tmp_path, compare={"treatment": "aries", "baseline": "idpo"}).read_text()
    row = next(x for x in report.splitlines() if x.startswith("| aries SR > idpo SR"))
    assert "| 0: +100.0, 1: -10.0 | no (seeds disagree) |" in row, row
    assert "| 0: +0.0, 1: +0.0 | yes |" in report  # SR >= Direct holds in each seed (no refinement change)


def test_an_ablation_is_below_only_when_the_interval_excludes_zero(tmp_path):
    """An ablation a little under ARIES on every seed, interval across 0: not shown; far under: yes."""
    n = 40
    first = lambda m: {f"i{k}": "11" if k < m else "00" for k in range(n)}  # noqa: E731
    for arm, m in (("aries", 30), ("near", 29), ("far", 10)):
        path = tmp_path / arm / "seed0" / "01-iter1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_result(arm, 0, 1, "iter1", first(m))))
    report = write_report(tmp_path, compare={"treatment": "aries", "ablations": ["near", "far"]}).read_text()
    near = next(x for x in report.splitlines() if x.startswith("| near SR below aries SR"))
    far = next(x for x in report.splitlines() if x.startswith("| far SR below aries SR"))
    assert near.endswith("| 0: +2.5 | not shown (right direction, interval includes 0) |"), near
    assert far.endswith("| 0: +50.0 | yes |"), far


def test_arms_are_compared_on_the_seeds_both_ran(tmp_path):
    """An ablation run on seed 0 only is compared with the treatment's seed 0, not its seed mean."""
    n = 40
    first = lambda m: {f"i{k}": "11" if k < m else "00" for k in range(n)}  # noqa: E731
    runs = {("aries", 0): first(20), ("aries", 1): first(40), ("abl", 0): first(20)}
    for (arm, seed), items in runs.items():
        path = tmp_path / arm / f"seed{seed}" / "01-iter1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_result(arm, seed, 1, "iter1", items)))
    report = write_report(tmp_path, compare={"treatment": "aries", "ablations": ["abl"]}).read_text()
    row = next(x for x in report.splitlines() if x.startswith("| abl SR below aries SR"))
    assert row.startswith("| abl SR below aries SR | 0.0 [") and "| 0: +0.0 | no |" in row, row
    # the same holds for the baseline, in the targets, the paired-comparison table and the console
    report = write_report(tmp_path, compare={"treatment": "abl", "baseline": "aries"}).read_text()
    assert "| abl SR - aries SR | 40 | 0.0 |" in report
    console = final_summary(load_results(tmp_path), {"treatment": "abl", "baseline": "aries"})
    assert "abl SR - aries SR: 0.0 points" in console, console
