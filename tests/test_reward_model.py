"""Reward models: the Bradley-Terry loss, RewardModule (trained rewards = served rewards), ``aries-lit
fit`` on the tiny reward-model config (export, selector, resume), refusal of folders that are no
reward model, the configs, and the record of which reward model selected and which judged."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from aries_lit.cli import main
from aries_lit.core.configs import load_run_config
from aries_lit.data import PreferenceDataModule, load_preference_records
from aries_lit.data.views import record_prompt
from aries_lit.evaluation import evaluate_checkpoints
from aries_lit.losses import LOSSES, BradleyTerryLoss, PairRewards
from aries_lit.modules import PolicyModule, RewardModule
from aries_lit.selectors import RewardModelSelector

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "tiny" / "reward_model.yaml"
OUTCOME_FIT = REPO / "configs" / "reward" / "outcome_arith" / "fit.yaml"
REWARD_CONFIGS = [*sorted((REPO / "configs" / "reward").glob("*.yaml")), OUTCOME_FIT]
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


# --- the loss ---------------------------------------------------------------------------------


def _neg_log_sigmoid(x: float) -> float:
    return math.log1p(math.exp(-x))


def test_bradley_terry_matches_a_hand_computation_with_margin_and_centring():
    chosen, rejected, margin = [1.0, -0.5, 2.0], [0.0, 0.5, 2.5], [0.5, 0.0, -1.0]
    c = 0.1
    loss = BradleyTerryLoss(center_rewards_coefficient=c)
    out = loss(PairRewards(torch.tensor(chosen), torch.tensor(rejected), torch.tensor(margin)))
    per_pair = [_neg_log_sigmoid(w - r - m) for w, r, m in zip(chosen, rejected, margin)]
    center = c * sum((w + r) ** 2 for w, r in zip(chosen, rejected)) / 3
    assert out.loss.item() == pytest.approx(sum(per_pair) / 3 + center, rel=1e-6)
    assert out.metrics["loss/bradley_terry"].tolist() == pytest.approx(per_pair, rel=1e-6)
    assert out.metrics["loss/center"].item() == pytest.approx(center, rel=1e-6)
    assert out.metrics["rewards/accuracy"].tolist() == [1.0, 0.0, 0.0]
    assert out.metrics["rewards/margin"].tolist() == pytest.approx([1.0, -1.0, -0.5])

    plain = BradleyTerryLoss()(PairRewards(torch.tensor(chosen), torch.tensor(rejected)))
    assert plain.loss.item() == pytest.approx(
        sum(_neg_log_sigmoid(w - r) for w, r in zip(chosen, rejected)) / 3, rel=1e-6
    )
    assert "loss/center" not in plain.metrics
    ignored = BradleyTerryLoss(use_margin=False)(
        PairRewards(torch.tensor(chosen), torch.tensor(rejected), torch.tensor(margin))
    )
    assert ignored.loss.item() == pytest.approx(plain.loss.item())


def test_bradley_terry_gradient_and_bad_inputs():
    chosen = torch.tensor([0.3, -0.2], requires_grad=True)
    rejected = torch.tensor([0.1, 0.4], requires_grad=True)
    BradleyTerryLoss()(PairRewards(chosen, rejected)).loss.backward()
    expected = [-(1 - 1 / (1 + math.exp(-(w - r)))) / 2 for w, r in ((0.3, 0.1), (-0.2, 0.4))]
    assert chosen.grad.tolist() == pytest.approx(expected, rel=1e-5)
    assert rejected.grad.tolist() == pytest.approx([-g for g in expected], rel=1e-5)
    with pytest.raises(ValueError, match="center_rewards_coefficient"):
        BradleyTerryLoss(center_rewards_coefficient=-1.0)
    with pytest.raises(ValueError, match=r"\[B\]"):
        BradleyTerryLoss()(PairRewards(torch.zeros(2), torch.zeros(3)))
    assert isinstance(LOSSES.build("bradley_terry"), BradleyTerryLoss)


def test_policy_and_reward_modules_refuse_each_others_losses(tiny_model_dir):
    with pytest.raises(ValueError, match="RewardModule"):
        PolicyModule(model=str(tiny_model_dir), loss="bradley_terry")
    with pytest.raises(ValueError, match="reward loss"):
        RewardModule(model=str(tiny_model_dir), loss="dpo")


# --- trained rewards are served rewards ---------------------------------------------------------


@pytest.fixture(scope="module")
def rm_pad_is_end_of_turn(tiny_reward_model_dir, tmp_path_factory) -> Path:
    """The tiny reward model with pad = ``<|im_end|>`` (as SmolLM2's tokenizer has it): the rendered
    conversation then ends ``<|im_end|>\\n`` and the score sits on the ``\\n``."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("rm_pad_eos")
    shutil.copytree(tiny_reward_model_dir, out, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(out))
    tok.pad_token = tok.eos_token
    tok.save_pretrained(str(out))
    config = json.loads((out / "config.json").read_text())
    config["pad_token_id"] = tok.pad_token_id
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize("shared_context", [True, False], ids=["shared_context", "one_row_per_view"])
@pytest.mark.parametrize("pad", ["own_pad", "pad_is_end_of_turn"])
def test_module_rewards_equal_the_selector_scores(
    shared_context, pad, tiny_reward_model_dir, rm_pad_is_end_of_turn
):
    """RewardModule's r(x, y) of a collated batch = RewardModelSelector's score of the rendered
    (x, y): the same tokens, the same scoring position, either collator."""
    model_dir = str(tiny_reward_model_dir if pad == "own_pad" else rm_pad_is_end_of_turn)
    module = RewardModule(model=model_dir)
    module.configure_model()
    module.reward_model.eval()
    assert module.response_end == "<|im_end|>\n"
    dm = PreferenceDataModule(
        train=HH,
        format="hh",
        limit=6,
        on_error="skip",
        shared_context=shared_context,
        max_length=4096,
        max_context_length=4000,
    )
    dm.configure(module.tokenizer, module.views, module.response_end)
    dm.setup()
    records = load_preference_records(HH, format="hh", limit=6, on_error="skip")
    batch = dm.collator()([dm.train_data[i] for i in range(len(dm.train_data))])
    with torch.no_grad():
        rewards = module.view_rewards(batch)
    selector = RewardModelSelector(model=model_dir, keep_loaded=True, max_length=4096)
    selector.load()
    for view, field in (("direct/chosen", "chosen"), ("direct/rejected", "rejected")):
        texts = [selector.render(record_prompt(r), r[field]) for r in records]
        assert rewards[view].tolist() == pytest.approx(selector.score_texts(texts), abs=1e-5)
    selector.unload()


def test_margin_field_reaches_the_loss(tiny_model_dir, tmp_path):
    rows = [
        {"prompt": f"What is {i} + {i}?", "chosen": f"{2 * i}.", "rejected": f"{2 * i + 1}.", "margin": m}
        for i, m in enumerate([0.5, 2.0, None])
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    module = RewardModule(model=str(tiny_model_dir))
    dm = PreferenceDataModule(train=str(path), batch_size=3, shuffle=False)
    dm.configure(module.tokenizer, module.views, module.response_end)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["margin"].tolist() == [0.5, 2.0, 0.0]  # a pair without one counts 0
    rows[1]["margin"] = "big"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad = PreferenceDataModule(train=str(path))
    bad.configure(module.tokenizer, module.views, module.response_end)
    with pytest.raises(ValueError, match="margin"):
        bad.setup()


# --- aries-lit fit on the tiny config -----------------------------------------------------------


def _fit_args(model_dir: Path, root: Path, steps: int) -> list[str]:
    return [
        "fit",
        "--config",
        str(TINY_CONFIG),
        "--model.init_args.model",
        str(model_dir),
        "--trainer.max_steps",
        str(steps),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
    ]


def test_fit_trains_a_reward_model_that_the_selector_and_judge_load(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    main([*_fit_args(tiny_model_dir, tmp_path, 4), "--trainer.val_check_interval", "2"])
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    for key in (
        "train/rewards/accuracy_step",
        "train/rewards/margin_step",
        "val/rewards/accuracy",
        "val/loss",
    ):
        assert key in header, key
    column = header.index("val/rewards/accuracy")
    val_acc = [float(row.split(",")[column]) for row in metrics[1:] if row.split(",")[column]]
    assert len(val_acc) == 2 and all(0.0 <= a <= 1.0 for a in val_acc)

    hf = tmp_path / "hf_model"
    config = json.loads((hf / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1
    tok = AutoTokenizer.from_pretrained(str(hf))
    assert config["pad_token_id"] == tok.pad_token_id is not None
    weights = load_file(str(hf / "model.safetensors"))
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    assert weights["score.weight"].shape == (1, 64)
    changed = [k for k in start if k in weights and not torch.equal(start[k], weights[k])]
    assert "model.layers.0.self_attn.q_proj.weight" in changed, "training did not change the decoder"
    provenance = json.loads((hf / "aries_lit_provenance.json").read_text())
    assert provenance["module"] == "RewardModule" and provenance["data_selected_by"] == []

    groups = [
        {
            "id": f"g{i}",
            "prompt": f"What is {i} + {i}?",
            "candidates": [
                {"index": j, "text": t, "finish_reason": "stop"}
                for j, t in enumerate([f"The answer is {2 * i}.", "I do not know.", f"{2 * i + 1}"])
            ],
        }
        for i in range(3)
    ]
    result = RewardModelSelector(model=str(hf)).select(groups)
    assert result.stats["candidates/scored"] == 9 and len(result.pairs) == 3
    assert all(p["chosen"] != p["rejected"] for p in result.pairs)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_killed_reward_model_run_resumes_from_last_ckpt(tiny_model_dir, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "aries_lit.cli",
        *_fit_args(tiny_model_dir, tmp_path, 6),
        "--checkpoint.every_n_train_steps",
        "2",
        "--trainer.logger",
        "false",
    ]
    killed = subprocess.run(
        [*cmd, "--trainer.callbacks+=helpers.KillAtStep", "--trainer.callbacks.step=3"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert killed.returncode != 0
    assert not (tmp_path / "hf_model").exists()
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert any(k.startswith("reward_model.score.") for k in ckpt["state_dict"])
    rerun = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Restoring states from the checkpoint" in rerun.stderr + rerun.stdout
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["global_step"] == 6
    assert (tmp_path / "hf_model" / "model.safetensors").exists()


@pytest.mark.slow
def test_two_process_ddp_trains_a_reward_model_with_synced_metrics(tiny_model_dir, tmp_path):
    record = tmp_path / "rec"
    cmd = [
        sys.executable,
        "-m",
        "aries_lit.cli",
        *_fit_args(tiny_model_dir, tmp_path / "run", 3),
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.logger",
        "false",
        "--trainer.callbacks+=helpers.RecordBatches",
        f"--trainer.callbacks.path={record}",
    ]
    run = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [[json.loads(x) for x in Path(f"{record}.rank{r}").read_text().splitlines()] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    for a, b in zip(*ranks):
        assert set(a["ids"]).isdisjoint(b["ids"]), "ranks trained on the same pairs"
        for key in ("train/rewards/accuracy_step", "train/rewards/margin_step"):
            assert a["metrics"][key] == pytest.approx(b["metrics"][key], abs=1e-6), key
    config = json.loads((tmp_path / "run" / "hf_model" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]


# --- folders that are no reward model -----------------------------------------------------------


@pytest.fixture(scope="module")
def two_label_dir(tmp_path_factory) -> Path:
    from transformers import LlamaForSequenceClassification

    from aries_lit.models.tiny import _llama_config, build_tiny_tokenizer

    out = tmp_path_factory.mktemp("two_labels")
    tok = build_tiny_tokenizer(out)
    LlamaForSequenceClassification(_llama_config(tok, 64, 1, num_labels=2)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def headless_classifier_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A causal LM's weights under a one-label classifier's config: no score head in the weights."""
    out = tmp_path_factory.mktemp("headless")
    shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)
    config = json.loads((out / "config.json").read_text())
    config.update(
        architectures=["LlamaForSequenceClassification"], id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}
    )
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(
    ("folder", "cause"),
    [
        ("tiny_model_dir", "is a LlamaForCausalLM folder, not a sequence classifier"),
        ("two_label_dir", "has 2 labels"),
        (
            "headless_classifier_dir",
            "no trained score head in its weights (missing or mismatched: score.weight",
        ),
    ],
    ids=["causal_lm", "two_labels", "no_score_weights"],
)
def test_wrong_folders_are_refused_in_one_line(folder, cause, request):
    path = str(request.getfixturevalue(folder))
    with pytest.raises(ValueError) as info:
        RewardModelSelector(model=path).select(
            [{"id": "g", "prompt": "q", "candidates": [{"index": i, "text": t} for i, t in enumerate("ab")]}]
        )
    message = str(info.value)
    assert "\n" not in message and f"reward model '{path}'" in message and cause in message


def test_evaluate_refuses_a_wrong_judge_before_generating(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "evaluate",
                "--checkpoints",
                json.dumps([str(tiny_model_dir)]),
                "--tasks",
                '[{"class_path": "arithmetic", "init_args": {"count": 2}}]',
                "--judge",
                str(tiny_model_dir),
                "--out_dir",
                str(out),
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"aries-lit: error: reward model '{tiny_model_dir}' is a Llama"
    )
    assert not any(out.rglob("candidates.jsonl"))


def test_reward_training_refuses_a_two_label_classifier(two_label_dir):
    module = RewardModule(model=str(two_label_dir))
    with pytest.raises(ValueError, match="classifier with 2 labels"):
        module.configure_model()


# --- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [TINY_CONFIG, *REWARD_CONFIGS], ids=lambda c: c.stem)
def test_reward_configs_round_trip_print_config(config, tmp_path, capsys):
    from test_fit_cli import printed_config

    first = printed_config(["--config", str(config)], capsys)
    again = tmp_path / "printed.yaml"
    again.write_text(yaml.safe_dump(first))
    assert printed_config(["--config", str(again)], capsys) == first
    assert first["model"]["class_path"] == "aries_lit.modules.RewardModule"
    assert first["model"]["init_args"]["loss"]["class_path"] == "aries_lit.losses.BradleyTerryLoss"
    assert first["data"]["init_args"]["format"] == ("trl" if "outcome" in str(config) else "hh")


def test_outcome_reward_model_steps_agree_and_never_see_the_test_split():
    """The outcome RM's generate/select configs use the same prompts per split; train and
    validation prompts are disjoint, and neither holds an item of the study's test split."""
    from aries_lit.prompts.sources import load_prompts

    folder = REPO / "configs" / "reward" / "outcome_arith"
    texts = {}
    for split in ("train", "validation"):
        gen = load_run_config(folder / f"generate_{split}.yaml")
        sel = load_run_config(folder / f"select_{split}.yaml")
        assert gen["prompts"] == sel["prompts"] and gen["prompts"]["init_args"]["split"] == split
        assert sel["candidates"] == gen["out_dir"]
        texts[split] = {p["prompt"] for p in load_prompts(gen["prompts"])}
    study = yaml.safe_load((REPO / "configs" / "study" / "cpu.yaml").read_text())
    (task,) = study["evaluation"]["tasks"]
    test = {p["prompt"] for p in load_prompts({k: v for k, v in task.items() if k != "label"})}
    assert len(texts["train"]) == 300 and len(texts["validation"]) == 150
    assert texts["train"].isdisjoint(texts["validation"])
    assert test.isdisjoint(texts["train"] | texts["validation"])
    fit = yaml.safe_load((folder / "fit.yaml").read_text())["data"]["init_args"]
    assert (fit["train"], fit["val"]) == (f"{gen['out_dir'][:-len('validation')]}train/pairs.jsonl",
                                          f"{gen['out_dir']}/pairs.jsonl")  # fmt: skip


def test_smollm2_reward_data_is_disjoint_from_the_demos():
    """The SmolLM2 reward model's pairs (train and validation) share no record with the CPU demo's."""
    demo = yaml.safe_load((REPO / "configs" / "iterate" / "demo_cpu.yaml").read_text())
    demo_data = demo["stages"][0]["fit"]["data"]["init_args"]
    rm_data = yaml.safe_load((REPO / "configs" / "reward" / "hh_smollm2.yaml").read_text())["data"][
        "init_args"
    ]
    assert demo_data["train"] == rm_data["train"] == HH
    demo_ids = set(load_preference_records(HH, format="hh", limit=demo_data["limit"], on_error="skip")["id"])
    rm_ids = load_preference_records(
        HH, format="hh", offset=rm_data["offset"], limit=rm_data["limit"], on_error="skip"
    )["id"]
    assert len(rm_ids) == rm_data["limit"] and demo_ids.isdisjoint(rm_ids)
    assert rm_ids[0] == f"harmless_base_test-{rm_data['offset'] + 1}"  # offset skips records 1..offset
    first_64 = set(load_preference_records(HH, format="hh", limit=64, on_error="skip")["id"])
    assert first_64.isdisjoint(rm_ids)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        load_preference_records(HH, format="hh", offset=-1)


def test_identical_conversations_are_scored_once_and_counted_as_cache_hits(tiny_reward_model_dir):
    """A refinement that repeats its answer is scored once: the same score (so the pair is a tie),
    counted in ``scoring/cache_hits``; the selection reports scoring throughput."""
    groups = [
        {"id": "a", "prompt": "1 + 1?", "candidates": [{"text": "2"}, {"text": "2"}, {"text": "3"}]},
        {"id": "b", "prompt": "2 + 2?", "candidates": [{"text": "4"}, {"text": "4"}]},
    ]
    result = RewardModelSelector(model=str(tiny_reward_model_dir)).select(groups)
    assert result.stats["scoring/cache_hits"] == 2 and result.stats["scoring/forward"] == 3
    assert result.stats["skipped/tie"] == 1 and result.stats["pairs"] == 1
    assert result.pairs[0]["scores"][0] == result.pairs[0]["scores"][1]
    assert result.scoring["candidates"] == 5 and result.scoring["cache_hits"] == 2
    line = result.scoring_summary()
    assert line.startswith("scoring: 5 candidates, 2 cache hits in ") and "pairs/s" in line
    assert "scoring/" not in result.summary()  # the counts have their own line
    with pytest.raises(ValueError, match="backend must be one of transformers, vllm, got 'onnx'"):
        RewardModelSelector(model=str(tiny_reward_model_dir), backend="onnx")


# --- which reward model selected, which judged ---------------------------------------------------


def test_selection_and_export_record_the_reward_model_and_evaluate_warns_about_its_judge(
    tiny_model_dir, tiny_reward_model_dir, tmp_path
):
    from test_evaluation import _alpaca_file, _scripted, _sum_file

    from aries_lit.pipeline.collect import generate, select

    rm = str(tiny_reward_model_dir)
    prompts = {
        "class_path": "file",
        "path": str(_sum_file(tmp_path / "sums.jsonl", 4)),
        "prompt_field": "question",
    }
    candidates = generate(
        str(tiny_model_dir),
        prompts,
        {**_scripted(), "num_candidates": 2},
        str(tmp_path / "cands"),
        progress=False,
    )
    pairs = select(candidates, prompts, {"class_path": "reward_model", "model": rm})
    stats = json.loads((Path(pairs).parent / "selection_stats.json").read_text())
    assert stats["reward_model"] == str(Path(rm).resolve()) and stats["pairs_file"] == str(
        Path(pairs).resolve()
    )
    scoring = stats["scoring"]  # what scoring cost, beside the counts
    assert scoring["candidates"] == 8 and scoring["pairs"] == stats["pairs"] and scoring["seconds"] > 0
    assert scoring["candidates_per_s"] == pytest.approx(8 / scoring["seconds"], rel=1e-2)
    assert stats["scoring/forward"] + stats.get("scoring/cache_hits", 0) == 8

    run = tmp_path / "dpo"
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "tiny" / "dpo_offline.yaml"),
            "--model.init_args.model",
            str(tiny_model_dir),
            "--data.init_args.train",
            pairs,
            "--data.init_args.format",
            "trl",
            "--data.init_args.batch_size",
            "2",
            "--trainer.max_steps",
            "1",
            "--trainer.default_root_dir",
            str(run),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
        ]
    )
    provenance = json.loads((run / "hf_model" / "aries_lit_provenance.json").read_text())
    assert provenance["data_selected_by"] == [str(Path(rm).resolve())]

    alpaca, references = _alpaca_file(tmp_path / "alpaca.json", 2)
    result = evaluate_checkpoints(
        [str(run / "hf_model"), str(tiny_model_dir)],
        tasks=[{"class_path": "alpaca_eval", "path": str(alpaca)}],
        out_dir=str(tmp_path / "eval"),
        num_refinements=0,
        generator=_scripted(references),
        judge=rm,
        names=["dpo", "base"],
        progress=False,
        plots=False,
    )
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["config"]["judge_path"] == str(Path(rm).resolve())
    assert report["results"]["dpo"]["data_selected_by"] == [str(Path(rm).resolve())]
    assert report["results"]["base"]["data_selected_by"] == []
    warnings = report["config"]["warnings"]
    assert len(warnings) == 1 and "checkpoint 'dpo'" in warnings[0]
    assert "**Warning:**" in result["markdown"]
