"""Every shipped config parses, and every ablation overlay differs from its base exactly where intended."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aries_lit.core.configs import load_run_config

REPO = Path(__file__).resolve().parents[1]
FIT_CONFIGS = sorted((REPO / "configs" / "paper").glob("*.yaml"))
RUN_CONFIGS = sorted((REPO / "configs" / "iterate").rglob("*.yaml"))


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            key = v.get("name", i) if isinstance(v, dict) else i
            yield from _leaves(v, f"{prefix}.{key}")
    else:
        yield prefix, node


def _diff(a, b):
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    return {k for k in la.keys() | lb.keys() if la.get(k, "<absent>") != lb.get(k, "<absent>")}


@pytest.mark.parametrize("config", FIT_CONFIGS, ids=[c.stem for c in FIT_CONFIGS])
def test_paper_fit_configs_parse(config, capsys):
    from test_fit_cli import printed_config

    printed = printed_config(["--config", str(config)], capsys)
    assert printed["model"]["init_args"]["model"] == "meta-llama/Llama-3.1-8B"
    assert (
        printed["trainer"]["accumulate_grad_batches"]
        * printed["trainer"]["devices"]
        * printed["data"]["init_args"]["batch_size"]
        == 128
    )  # the paper's batch


STRATEGIES = sorted((REPO / "configs" / "strategy").glob("*.yaml"))


@pytest.mark.parametrize("overlay", STRATEGIES, ids=[c.stem for c in STRATEGIES])
def test_strategy_overlays_change_only_the_strategy(overlay, capsys):
    """``--config paper.yaml --config strategy/<zero>.yaml``: DeepSpeed settings and (ZeRO-3) cached
    reference log-probs; nothing else of the paper config moves."""
    from test_fit_cli import printed_config

    paper = REPO / "configs" / "paper" / "aries_offline.yaml"
    base = printed_config(["--config", str(paper)], capsys)
    both = printed_config(["--config", str(paper), "--config", str(overlay)], capsys)
    strategy = both["trainer"]["strategy"]
    assert strategy["class_path"] == "lightning.pytorch.strategies.DeepSpeedStrategy"
    stage = strategy["init_args"]["stage"]
    assert stage == (3 if "zero3" in overlay.stem else 2)
    offload = "offload" in overlay.stem
    assert strategy["init_args"]["offload_optimizer"] is offload
    assert strategy["init_args"]["offload_parameters"] is (offload and stage == 3)
    if stage == 3:
        assert both["model"]["init_args"]["precompute_reference"] is True
    assert both["trainer"]["precision"] == "bf16-mixed"
    allowed = {"trainer.strategy", "model.init_args.precompute_reference"}
    moved = {k for k in _diff(base, both) if not any(k == a or k.startswith(a + ".") for a in allowed)}
    assert not moved, moved


@pytest.mark.parametrize(
    "config", RUN_CONFIGS, ids=[str(c.relative_to(REPO / "configs" / "iterate")) for c in RUN_CONFIGS]
)
def test_run_configs_resolve(config, monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = load_run_config(config)
    assert resolved["stages"] and all("fit" in s for s in resolved["stages"])
    for stage in resolved["stages"]:
        assert stage["fit"]["model"]["class_path"].startswith("aries_lit.modules.")


LOSS = "fit.model.init_args.loss"
#: the selector options that differ between the rule selector and the reward-model selector
RM_ARGS = ("model", "batch_size", "dtype", "chosen_index", "rejected_index")
OVERLAYS = {
    "paper/ablations/no_dpo.yaml": {
        f"stages.{s}.{LOSS}.init_args.alpha" for s in ("offline", "iter1", "iter2")
    },
    "paper/ablations/ps_instead_of_sr.yaml": {
        f"stages.{s}.collect.generator.class_path" for s in ("iter1", "iter2")
    },
    "paper/ablations/bt_instead_of_mse.yaml": {
        f"stages.{s}.{LOSS}.init_args.refine.class_path" for s in ("offline", "iter1", "iter2")
    },
    "paper/ablations/rm_instead_of_rule.yaml": {
        f"stages.{s}.collect.selector.{k}"
        for s in ("iter1", "iter2")
        for k in ("class_path", *(f"init_args.{a}" for a in RM_ARGS))
    },
    "paper/bt_aries.yaml": {
        f"stages.{s}.{LOSS}.{k}"
        for s in ("offline", "iter1", "iter2")
        for k in ("class_path", "init_args.refine.class_path")
    },
    "paper/aries_rm.yaml": {
        f"stages.{s}.collect.selector.{k}"
        for s in ("iter1", "iter2")
        for k in ("class_path", *(f"init_args.{a}" for a in RM_ARGS))
    }
    | {f"stages.{s}.{LOSS}.init_args.refine.init_args.beta" for s in ("offline", "iter1", "iter2")},
}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlays_change_exactly_the_intended_keys(overlay, monkeypatch):
    monkeypatch.chdir(REPO)
    base = load_run_config(REPO / "configs" / "iterate" / "paper" / "aries.yaml")
    derived = load_run_config(REPO / "configs" / "iterate" / overlay)
    changed = _diff(base, derived) - {"run_dir"}
    assert changed == OVERLAYS[overlay]


def test_no_dpo_sets_alpha_one_and_keeps_the_refine_loss(monkeypatch):
    monkeypatch.chdir(REPO)
    derived = load_run_config(REPO / "configs" / "iterate" / "paper" / "ablations" / "no_dpo.yaml")
    loss = derived["stages"][1]["fit"]["model"]["init_args"]["loss"]
    assert loss["init_args"]["alpha"] == 1.0
    assert loss["init_args"]["refine"]["class_path"] == "aries_lit.losses.RefineMSELoss"


def test_overlay_errors_name_the_file_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"base": str(REPO / "configs/iterate/paper/aries.yaml"), "overrides": {"stages.nosuch.fit.x": 1}}
        )
    )
    with pytest.raises(ValueError, match="bad.yaml: override 'stages.nosuch.fit.x'"):
        load_run_config(bad)


STUDY = REPO / "configs" / "study"
STUDY_STAGES = ("sft", "offline", "iter1", "iter2")
STUDY_OVERLAYS = {
    "iterative_dpo.yaml": {f"stages.{s}.{LOSS}" for s in STUDY_STAGES}
    | {f"stages.{s}.collect.generator.class_path" for s in ("iter1", "iter2")},
    "aries_no_dpo.yaml": {f"stages.{s}.{LOSS}.init_args.alpha" for s in STUDY_STAGES[1:]},
    "aries_ps.yaml": {f"stages.{s}.collect.generator.class_path" for s in ("iter1", "iter2")},
    "aries_rm.yaml": {f"stages.{s}.collect.selector" for s in ("iter1", "iter2")}
    | {f"stages.{s}.{LOSS}.init_args.refine.init_args.beta" for s in ("iter1", "iter2")},
    "iterative_dpo_rm.yaml": {f"stages.{s}.{LOSS}" for s in STUDY_STAGES}
    | {f"stages.{s}.collect.{k}" for s in ("iter1", "iter2") for k in ("generator.class_path", "selector")},
    "bt_aries.yaml": {
        f"stages.{s}.{LOSS}.{k}"
        for s in STUDY_STAGES[1:]
        for k in ("class_path", "init_args.refine.class_path")
    },
}
#: the loss arms: Iterative DPO's sft and offline, and their own iterations (module, data, selection)
_ITERATIONS = ("iter1", "iter2")
_GROUP_OR_UNPAIRED = {
    f"stages.{s}.{k}" for s in _ITERATIONS for k in ("fit.model", "fit.data", "collect.selector")
}
STUDY_OVERLAYS["iterative_rpo.yaml"] = STUDY_OVERLAYS["iterative_dpo.yaml"]
for _arm in ("iterative_grpo.yaml", "iterative_kto.yaml"):
    STUDY_OVERLAYS[_arm] = (
        {f"stages.{s}.{LOSS}" for s in STUDY_STAGES[:2]}
        | {f"stages.{s}.collect.generator.class_path" for s in _ITERATIONS}
        | _GROUP_OR_UNPAIRED
    )
STUDY_OVERLAYS["aries_grpo.yaml"] = _GROUP_OR_UNPAIRED


ARM_OVERLAYS = [("arms", k, v) for k, v in sorted(STUDY_OVERLAYS.items())]


#: the instruction-following study's arms (configs/study/if_arms/): what each changes from ARIES
#: (a PS generator also drops the refinement template that the SR generator is given)
IF_ITERS = ("iter1", "iter2")
IF_OVERLAYS = {
    "iterative_dpo.yaml": {f"stages.{s}.{LOSS}" for s in STUDY_STAGES}
    | {f"stages.{s}.collect.generator" for s in IF_ITERS},
    "aries_no_dpo.yaml": {f"stages.{s}.{LOSS}.init_args.alpha" for s in STUDY_STAGES[1:]},
    "aries_ps.yaml": {f"stages.{s}.collect.generator" for s in IF_ITERS},
    "bt_aries.yaml": {f"stages.{s}.{LOSS}.{k}" for s in STUDY_STAGES[1:]
                      for k in ("class_path", "init_args.refine.class_path")},
    "aries_rule.yaml": {f"stages.{s}.collect.selector" for s in IF_ITERS},
    "self_rewarding.yaml": {f"stages.{s}.{LOSS}" for s in STUDY_STAGES}
    | {f"stages.{s}.collect.{k}" for s in IF_ITERS for k in ("generator", "selector")},
}  # fmt: skip
ARM_OVERLAYS += [("if_arms", k, v) for k, v in sorted(IF_OVERLAYS.items())]


@pytest.mark.parametrize(
    ("folder", "overlay", "allowed"),
    ARM_OVERLAYS,
    ids=[f"{folder}/{overlay}" for folder, overlay, _ in ARM_OVERLAYS],
)
def test_study_arms_change_exactly_the_intended_keys(folder, overlay, allowed, monkeypatch):
    """Each arm of a study (configs/study/arms/: the CPU study; if_arms/: instruction following)
    differs from its ARIES arm only where the paper's arm does, in the settings each stage runs with
    (its config with the arm's refinement template filled in)."""
    from aries_lit.pipeline.run_template import apply_run_template
    from aries_lit.pipeline.specs import parse_stages

    monkeypatch.chdir(REPO)
    base = load_run_config(STUDY / folder / "aries.yaml")
    derived = load_run_config(STUDY / folder / overlay)
    for config in (base, derived):
        stages, _ = apply_run_template(config.get("template"), parse_stages(config["stages"]))
        config["stages"] = [stage.to_config() for stage in stages]
    moved = _diff(base, derived)
    assert all(any(k == a or k.startswith(a + ".") for a in allowed) for k in moved), moved
    assert all(any(k == a or k.startswith(a + ".") for k in moved) for a in allowed), (allowed, moved)


def test_if_study_covers_every_arm_config_and_compares_them(monkeypatch):
    """configs/study/if.yaml runs every arm of if_arms/ and compares each ablation with ARIES."""
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((STUDY / "if.yaml").read_text())
    files = {Path(a["config"]).name for a in config["arms"]}
    assert files == {p.name for p in (STUDY / "if_arms").glob("*.yaml")}
    names = {a["name"] for a in config["arms"]}
    compare = config["compare"]
    assert {compare["treatment"], compare["baseline"], *compare["ablations"]} == names
    seeds = {a["name"]: a["seeds"] for a in config["arms"]}
    assert len(seeds["aries"]) >= 3 and len(seeds["iterative_dpo"]) >= 3


def _assert_fits_parse(fits: dict, tmp_path, capsys) -> None:
    """Each fit config passes ``fit --print_config`` and names one of aries_lit's losses."""
    from test_fit_cli import printed_config

    for i, fit in enumerate(fits.values()):
        file = tmp_path / f"fit{i}.yaml"
        file.write_text(yaml.safe_dump(fit))
        printed = printed_config(["--config", str(file)], capsys)
        assert printed["model"]["init_args"]["loss"]["class_path"].startswith("aries_lit.losses.")


def test_every_study_stage_fit_config_parses(tmp_path, monkeypatch, capsys):
    """Every distinct fit config of every study arm (CPU and tiny) passes ``fit --print_config``."""
    import json

    from aries_lit.pipeline.study import Study

    monkeypatch.chdir(REPO)
    fits = {}
    for path in sorted(STUDY.glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        if "arms" not in config:
            continue
        stages = config.get("eval_stages", "all")
        study = Study(config["base_model"], config["arms"], config["evaluation"], eval_stages=stages)
        for arm in study.arms:
            for stage in arm.stages:
                fits[json.dumps(stage.fit, sort_keys=True)] = dict(stage.fit)
    assert len(fits) >= 8
    _assert_fits_parse(fits, tmp_path, capsys)


EVAL_CONFIGS = sorted((REPO / "configs" / "eval").glob("*.yaml"))


@pytest.mark.parametrize("config", EVAL_CONFIGS, ids=[c.stem for c in EVAL_CONFIGS])
def test_eval_configs_parse_and_their_parts_build(config, capsys, monkeypatch):
    """``aries-lit evaluate --config configs/eval/<x>.yaml --print_config`` passes, and the
    generator and every task's prompt source in it build from their registries."""
    from aries_lit.cli import main
    from aries_lit.generators import GENERATORS
    from aries_lit.prompts.sources import PROMPT_SOURCES

    monkeypatch.chdir(REPO)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["checkpoints"]
    GENERATORS.build(printed["generator"])
    from aries_lit.evaluation.tasks import TASK_KEYS

    for task in printed["tasks"]:
        spec = {k: v for k, v in task.items() if k not in TASK_KEYS}  # the rest is the prompt source
        assert PROMPT_SOURCES.build(spec).load()


def test_every_iterate_stage_fit_block_parses(tmp_path, monkeypatch, capsys):
    """Each distinct stage ``fit`` of every ``configs/iterate/**`` run config (overlays resolved,
    ``fit_config`` files inlined) passes ``fit --print_config``."""
    import json

    monkeypatch.chdir(REPO)
    fits = {}
    for path in RUN_CONFIGS:
        for stage in load_run_config(path)["stages"]:
            fits[json.dumps(stage["fit"], sort_keys=True)] = stage["fit"]
    assert len(fits) >= 6
    _assert_fits_parse(fits, tmp_path, capsys)


def test_an_override_does_not_leak_through_a_yaml_alias(tmp_path):
    """Stages that share a mapping by a YAML alias are separate places for an override."""
    (tmp_path / "base.yaml").write_text(
        "stages:\n  - {name: a, fit: &f {model: {lr: 1}}}\n  - {name: b, fit: *f}\n  - {name: c, fit: *f}\n"
    )
    (tmp_path / "over.yaml").write_text("base: base.yaml\noverrides:\n  stages.b.fit.model.lr: 2\n")
    stages = load_run_config(tmp_path / "over.yaml")["stages"]
    assert [s["fit"]["model"]["lr"] for s in stages] == [1, 2, 1]


# --------------------------------------------------------------------------- the spec dialect

#: keys whose value is a part spec (a name, or ``{class_path: ..., init_args: {...}}``)
SPEC_KEYS = {"prompts", "generator", "backend", "selector", "loss", "preference", "refine"}


def _spec_problems(node, where: str = "", spec_position: bool = False, task: bool = False) -> list[str]:
    """Places in a parsed config where a spec is not in the one dialect: a ``name:`` form, or
    options beside ``class_path`` instead of under ``init_args`` (a task may have its own keys
    there). Override keys (``stages.*.collect.generator.class_path``) count by their last part."""
    from aries_lit.evaluation.tasks import TASK_KEYS

    problems = []
    if isinstance(node, dict):
        if spec_position and ("name" in node or "class_path" in node):
            allowed = {"class_path", "init_args"} | (set(TASK_KEYS) if task else set())
            if "name" in node:
                problems.append(
                    f"{where}: uses 'name:' (write {{class_path: {node['name']}, init_args: ...}})"
                )
            elif set(node) - allowed:
                problems.append(
                    f"{where}: {sorted(set(node) - allowed)} beside class_path, not under init_args"
                )
        for key, value in node.items():
            parts = str(key).split(".")
            after = [parts[i + 1] for i in range(len(parts) - 1) if parts[i] in SPEC_KEYS]
            if after and after[-1] not in ("class_path", "init_args"):
                problems.append(
                    f"{where}.{key}: overrides '{after[-1]}' (write class_path or init_args.<option>)"
                )
            if key == "tasks" and isinstance(value, list):
                for i, item in enumerate(value):
                    problems += _spec_problems(item, f"{where}.tasks[{i}]", True, True)
                continue
            problems += _spec_problems(value, f"{where}.{key}" if where else str(key), parts[-1] in SPEC_KEYS)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            problems += _spec_problems(item, f"{where}[{i}]")
    return problems


ALL_CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


@pytest.mark.parametrize(
    "config", ALL_CONFIGS, ids=[str(c.relative_to(REPO / "configs")) for c in ALL_CONFIGS]
)
def test_shipped_configs_write_specs_in_the_one_dialect(config, monkeypatch):
    """No shipped config uses the deprecated ``name:`` spec forms (stage and arm names are not
    specs) or puts a part's options beside ``class_path``, as written or with its overlay applied."""
    monkeypatch.chdir(REPO)
    assert _spec_problems(yaml.safe_load(config.read_text())) == []
    assert _spec_problems(load_run_config(config)) == []


def test_the_dialect_check_finds_the_name_forms():
    config = {
        "stages": [{"name": "sft", "collect": {"prompts": {"name": "gsm8k", "limit": 4}, "selector": "x"}}],
        "evaluation": {"tasks": [{"class_path": "gsm8k", "label": "g", "limit": 4}], "generator": {
            "class_path": "sequential_refinement", "init_args": {"backend": {"name": "vllm"}}}},
        "overrides": {"stages.*.collect.generator.name": "parallel_sampling", "prompts.count": 3},
        "arms": [{"name": "aries", "config": "a.yaml"}],
    }  # fmt: skip
    problems = _spec_problems(config)
    assert len(problems) == 5, problems
    assert problems[0].startswith("stages[0].collect.prompts: uses 'name:'")
