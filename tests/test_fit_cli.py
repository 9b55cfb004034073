"""`aries-lit fit` end to end on the tiny configs: training, HF export, resume, print_config, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from aries_lit.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs" / "tiny").glob("*.yaml"))
#: the policy configs (the reward-model config is tested in tests/test_reward_model.py)
POLICY_CONFIGS = [
    c
    for c in CONFIGS
    if not any(
        m in c.read_text()
        for m in ("aries_lit.modules.RewardModule", "GroupPolicyModule", "UnpairedPolicyModule")
    )
]  # the group configs train on group records: test_grpo_variants_fit_from_config and
# test_aries_grpo_fits_from_config; the unpaired one (kto_unpaired.yaml) on unpaired records:
# test_kto_unpaired_fits_from_config
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


def _overrides(model_dir: Path, root: Path, steps: int = 2) -> list[str]:
    return [
        "--model.init_args.model",
        str(model_dir),
        "--data.init_args.train",
        HH,
        "--data.init_args.limit",
        "16",
        "--trainer.max_steps",
        str(steps),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger",
        "false",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("config", POLICY_CONFIGS, ids=[c.stem for c in POLICY_CONFIGS])
def test_each_tiny_config_trains_and_exports_a_reloadable_hf_model(config, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    main(["fit", "--config", str(config), *_overrides(tiny_model_dir, tmp_path)])
    hf = tmp_path / "hf_model"
    assert (hf / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(str(hf))
    AutoTokenizer.from_pretrained(str(hf))
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    changed = any(
        not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values())
    )
    assert changed, "training did not change the weights"
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["train/records"] == 16
    # the tokens one epoch trains on: every view's context and response (ARIES: several views a pair)
    assert stats["train/view_tokens"] > 16 * 2 * 10


def printed_config(args: list[str], capsys) -> dict:
    """``aries-lit fit ... --print_config``, in process, parsed."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_print_config_round_trips(config, tmp_path, capsys):
    first = printed_config(["--config", str(config)], capsys)
    again = tmp_path / "printed.yaml"
    again.write_text(yaml.safe_dump(first))
    assert printed_config(["--config", str(again)], capsys) == first
    assert first["model"]["init_args"]["loss"]["class_path"].startswith("aries_lit.losses")


def _fit_cmd(
    config: Path, model_dir: Path, root: Path, steps: int, record: Path, extra: list[str]
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "aries_lit.cli",
        "fit",
        "--config",
        str(config),
        *_overrides(model_dir, root, steps),
        "--checkpoint.every_n_train_steps",
        "2",
        "--trainer.callbacks+=helpers.RecordBatches",
        f"--trainer.callbacks.path={record}",
    ]
    return cmd + extra


def _trained_ids(record: Path) -> list[list[str]]:
    return [json.loads(line)["ids"] for line in Path(f"{record}.rank0").read_text().splitlines()]


@pytest.mark.parametrize(
    ("kill_step", "checkpoint_step"),
    [(3, 2), (5, 4)],
    ids=["mid-epoch", "checkpoint-on-an-epochs-last-batch"],
)
def test_killed_run_resumes_from_its_checkpoint_without_repeating_batches(
    tiny_model_dir, tmp_path, kill_step, checkpoint_step
):
    """16 records in batches of 4: 4 steps an epoch, a checkpoint every 2. Killed mid-epoch, or just
    after the checkpoint of an epoch's last batch (the rerun then starts the next epoch, from its
    first batch), the rerun trains exactly the batches the uninterrupted run did."""
    config = REPO / "configs" / "tiny" / "dpo_offline.yaml"
    full_rec, part_rec = tmp_path / "full", tmp_path / "part"
    subprocess.run(
        _fit_cmd(config, tiny_model_dir, tmp_path / "full_run", 6, full_rec, []),
        cwd=REPO,
        env=_env(),
        check=True,
        capture_output=True,
    )
    killed = subprocess.run(
        _fit_cmd(
            config,
            tiny_model_dir,
            tmp_path / "run",
            6,
            part_rec,
            ["--trainer.callbacks+=helpers.KillAtStep", f"--trainer.callbacks.step={kill_step}"],
        ),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert killed.returncode != 0
    assert not (tmp_path / "run" / "hf_model").exists()
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == checkpoint_step
    rerun = subprocess.run(
        _fit_cmd(config, tiny_model_dir, tmp_path / "run", 6, part_rec, []),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Restoring states from the checkpoint" in rerun.stderr + rerun.stdout
    assert (tmp_path / "run" / "hf_model" / "model.safetensors").exists()
    full = _trained_ids(full_rec)
    part = _trained_ids(part_rec)
    # the killed run trained steps 1..kill_step (those after the checkpoint lost with the crash),
    # the rerun continues after the checkpoint's step
    assert part[:checkpoint_step] == full[:checkpoint_step]
    assert part[kill_step:] == full[checkpoint_step:]
    assert len(part) - kill_step == len(full) - checkpoint_step


def test_user_loss_from_a_separate_module_trains_by_class_path(tiny_model_dir, tmp_path):
    example = REPO / "examples" / "custom_loss"
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(example), env["PYTHONPATH"]])
    cmd = [
        sys.executable,
        "-m",
        "aries_lit.cli",
        "fit",
        "--config",
        str(example / "config.yaml"),
        *_overrides(tiny_model_dir, tmp_path, steps=2),
    ]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "hf_model" / "model.safetensors").exists()
    assert "my_losses.MarginDPOLoss" in (tmp_path / "config.yaml").read_text()
    assert (
        "train/rewards/margin" in run.stdout + run.stderr or (tmp_path / "checkpoints" / "last.ckpt").exists()
    )


def test_two_process_ddp_metrics_agree_across_ranks(tiny_model_dir, tmp_path):
    config = REPO / "configs" / "tiny" / "aries_offline.yaml"
    record = tmp_path / "rec"
    cmd = _fit_cmd(
        config,
        tiny_model_dir,
        tmp_path / "run",
        3,
        record,
        ["--trainer.devices", "2", "--trainer.strategy", "ddp"],
    )
    run = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [[json.loads(x) for x in Path(f"{record}.rank{r}").read_text().splitlines()] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    for a, b in zip(*ranks):
        assert set(a["ids"]).isdisjoint(b["ids"]), "ranks trained on the same pairs"
        for key in ("train/rewards/accuracy_step", "train/refine/v_l_to_w_step", "train/rewards/margin_step"):
            assert a["metrics"][key] == pytest.approx(b["metrics"][key], abs=1e-6), key
    assert (tmp_path / "run" / "hf_model" / "model.safetensors").exists()


@pytest.mark.parametrize("loss", ["aries_lit.losses.ORPOLoss", "aries_lit.losses.CPOLoss"])
def test_reference_free_loss_fits_without_loading_a_reference(loss, tiny_model_dir, tmp_path, monkeypatch):
    """ORPO/CPO train end to end on the tiny model; loading the reference would fail the run."""
    from aries_lit.modules.policy import PolicyModule

    def no_reference(self):
        raise AssertionError("a reference-free loss loaded the reference model")

    monkeypatch.setattr(PolicyModule, "reference_model", no_reference)
    config = REPO / "configs" / "tiny" / "orpo.yaml"
    args = ["--model.init_args.loss", loss, *_overrides(tiny_model_dir, tmp_path)]
    main(["fit", "--config", str(config), *args])
    assert (tmp_path / "hf_model" / "model.safetensors").exists()


def test_kto_fits_in_aries_preference_slot(tiny_model_dir, tmp_path):
    """ARIES (Eq. 10) with KTO as L_pref trains end to end from config; KTO's ``kto/kl`` is logged."""
    config = REPO / "configs" / "tiny" / "aries_offline.yaml"
    record = tmp_path / "rec"
    kto = {"class_path": "aries_lit.losses.KTOLoss", "init_args": {"beta": 0.1, "undesirable_weight": 1.2}}
    main(
        [
            "fit",
            "--config",
            str(config),
            *_overrides(tiny_model_dir, tmp_path / "run"),
            f"--model.init_args.loss.init_args.preference={json.dumps(kto)}",
            "--trainer.callbacks+=helpers.RecordBatches",
            f"--trainer.callbacks.path={record}",
        ]
    )
    steps = [json.loads(x) for x in Path(f"{record}.rank0").read_text().splitlines()]
    assert len(steps) == 2
    for step in steps:
        assert step["metrics"]["train/kto/kl_step"] >= 0.0
        assert "train/refine/v_l_to_w_step" in step["metrics"]
    assert (tmp_path / "run" / "hf_model" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "loss",
    [
        {"variant": "grpo", "beta": 0.04},
        {"variant": "dr_grpo", "beta": 0.04, "max_completion_length": 64, "old_logps": "reference"},
        {"variant": "rloo", "beta": 0.0},
    ],
    ids=["grpo", "dr_grpo", "rloo"],
)
def test_grpo_variants_fit_from_config(loss, tiny_model_dir, tmp_path, monkeypatch):
    """configs/tiny/grpo.yaml trains each variant on the shipped group records and exports; with
    ``beta: 0`` (and ``old_logps: current``) the reference never loads."""
    from transformers import AutoModelForCausalLM

    from aries_lit.modules.policy import PolicyModule

    if not loss["beta"] and loss.get("old_logps", "current") == "current":

        def no_reference(self):
            raise AssertionError("beta 0 loaded the reference model")

        monkeypatch.setattr(PolicyModule, "reference_model", no_reference)
    config = REPO / "configs" / "tiny" / "grpo.yaml"
    spec = {"class_path": "aries_lit.losses.GRPOLoss", "init_args": loss}
    args = [a for a in _overrides(tiny_model_dir, tmp_path) if a not in ("--data.init_args.train", HH)]
    limit = args.index("--data.init_args.limit")
    args[limit + 1] = "6"
    groups = REPO / "configs" / "tiny" / "data" / "grpo_groups.jsonl"
    main(
        [
            "fit",
            "--config",
            str(config),
            *args,
            "--data.init_args.train",
            str(groups),
            f"--model.init_args.loss={json.dumps(spec)}",
        ]
    )
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_model"))
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert any(
        not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values())
    )
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["train/groups"] == 6 and stats["train/completions"] == 24


@pytest.mark.parametrize(
    "loss",
    [
        None,  # the config's: ARIESLoss(GRPOLoss beta 0.04, RefineMSELoss), alpha 0.8
        {
            "class_path": "aries_lit.losses.BTARIESLoss",
            "init_args": {
                "alpha": 0.8,
                "preference": {"class_path": "aries_lit.losses.GRPOLoss", "init_args": {"beta": 0.0}},
                "refine": {"class_path": "aries_lit.losses.BTRefineLoss", "init_args": {"beta": 0.05}},
            },
        },
    ],
    ids=["aries_grpo", "bt_aries_grpo"],
)
def test_aries_grpo_fits_from_config(loss, tiny_model_dir, tmp_path):
    """configs/tiny/aries_grpo.yaml trains GRPO on the groups plus the refine term on each group's
    best/worst pair, logs both parts and exports."""
    import csv

    from transformers import AutoModelForCausalLM

    config = REPO / "configs" / "tiny" / "aries_grpo.yaml"
    args = [a for a in _overrides(tiny_model_dir, tmp_path) if a not in ("--data.init_args.train", HH)]
    limit = args.index("--data.init_args.limit")
    args[limit + 1] = "4"
    logger = args.index("--trainer.logger")
    args[logger + 1] = f"{{class_path: CSVLogger, init_args: {{save_dir: {tmp_path}}}}}"
    extra = [f"--model.init_args.loss={json.dumps(loss)}"] if loss else []
    main(["fit", "--config", str(config), *args, *extra])
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    trained = ckpt["hyper_parameters"]["loss"]
    assert trained.startswith(("BTARIESLoss" if loss else "ARIESLoss") + "(preference=GRPOLoss(")
    assert ("refine=BTRefineLoss" if loss else "refine=RefineMSELoss") in trained
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_model"))
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert any(
        not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values())
    )
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["train/groups"] == 4 and stats["train/pairs/records"] == 4
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train/loss"]]
    assert len(rows) == 2
    for row in rows:
        pref, refine = float(row["train/loss/pref_step"]), float(row["train/loss/refine_step"])
        assert float(row["train/loss"]) == pytest.approx(0.2 * pref + 0.8 * refine, rel=1e-5)
        assert row["train/refine/v_l_to_w_step"] and row["train/advantages_step"]


@pytest.mark.parametrize("precompute", [False, True], ids=["reference-on-the-fly", "precompute-reference"])
def test_kto_unpaired_fits_from_config(precompute, tiny_model_dir, tmp_path):
    """configs/tiny/kto_unpaired.yaml trains KTO on the shipped unpaired records (the ``unpaired``
    selector's) and exports; KTO's metrics are logged; ``precompute_reference`` caches the
    reference's log-probs with the data and gives the same first-step loss."""
    from transformers import AutoModelForCausalLM

    config = REPO / "configs" / "tiny" / "kto_unpaired.yaml"
    records = REPO / "configs" / "tiny" / "data" / "kto_unpaired.jsonl"
    record = tmp_path / "rec"
    args = [a for a in _overrides(tiny_model_dir, tmp_path) if a not in ("--data.init_args.train", HH)]
    main(
        [
            "fit",
            "--config",
            str(config),
            *args,
            "--data.init_args.train",
            str(records),
            "--data.init_args.shuffle",
            "false",
            f"--model.init_args.precompute_reference={str(precompute).lower()}",
            "--trainer.callbacks+=helpers.RecordBatches",
            f"--trainer.callbacks.path={record}",
        ]
    )
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["train/examples"] == 16
    assert stats["train/desirable"] + stats["train/undesirable"] == 16 and stats["train/undesirable"] > 0
    steps = [json.loads(x) for x in Path(f"{record}.rank0").read_text().splitlines()]
    assert [len(s["ids"]) for s in steps] == [8, 8] and steps[0]["ids"][0] == "arith-train-3-0#0"
    first = steps[0]["metrics"]
    assert first["train/kto/kl_step"] == 0.0  # policy = reference at the first step
    assert first["train/rewards/chosen_step"] == first["train/rewards/rejected_step"] == 0.0
    assert first["train/kto/desirable_step"] == 0.5  # the first 8 records: 4 of each
    assert steps[1]["metrics"]["train/rewards/chosen_step"] != 0.0  # the policy moved
    assert (tmp_path / "reference_cache").exists() == precompute
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_model"))
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert any(
        not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values())
    )
