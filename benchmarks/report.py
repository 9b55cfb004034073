"""Turn a ``--benchmark-json`` file of this suite into the Markdown tables of ``benchmarks/README.md``.

    python benchmarks/report.py results.json [more.json | log.jsonl ...] > tables.md

Reads ``--benchmark-json`` files and ``ARIES_BENCH_LOG`` JSON-lines logs. Several files are
merged (later files win for the same benchmark name), so a run split in parts reports as one.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def load(paths: list[str]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    benches: dict[str, dict[str, Any]] = {}
    machines = []
    for path in paths:
        if path.endswith(".jsonl"):  # ARIES_BENCH_LOG files: one finished benchmark per line
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        b = json.loads(line)
                        benches[b["name"]] = b
                        machines.append({"datetime": b["datetime"], **b["extra_info"].get("machine", {})})
            continue
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        machines.append(
            {"datetime": data.get("datetime"), **data.get("machine_info", {}).get("aries_bench", {})}
        )
        for b in data["benchmarks"]:
            benches[b["name"]] = b
    return benches, machines


def _f(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def _load(info: dict[str, Any]) -> str:
    b, a = info.get("loadavg_before"), info.get("loadavg_after")
    return f"{b[0]:.1f} / {a[0]:.1f}" if b and a else "-"


def train_rows(benches: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, b in benches.items():
        info = b["extra_info"]
        if "s_per_step" in info and "loss" in info:
            test = name.split("[")[0]
            source = {"test_dpo_side_by_side": "side by side", "test_train_step": "throughput"}.get(
                test, test
            )
            rows.append({"name": name, "source": source, **info})
    order = {"tiny": 0, "smollm2": 1}
    loss_order = {"dpo": 0, "aries": 1, "bt_aries": 2}
    rows.sort(
        key=lambda r: (
            order.get(r["model"], 9),
            r["framework"] != "trl",
            loss_order.get(r["loss"], 9),
            r["precision"],
            r["reference"] != "on_the_fly",
        )
    )
    return rows


def infos_of(benches: dict[str, dict[str, Any]], framework: str) -> list[dict[str, Any]]:
    """``extra_info`` of every benchmark recorded by ``framework``."""
    return [b["extra_info"] for b in benches.values() if b["extra_info"].get("framework") == framework]


def find(rows, **kw) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def main(paths: list[str]) -> None:
    benches, machines = load(paths)
    out: list[str] = []
    p = out.append
    m = machines[0] if machines else {}
    loads = [
        b["extra_info"].get("loadavg_before")
        for b in benches.values()
        if b["extra_info"].get("loadavg_before")
    ]
    loads += [
        b["extra_info"].get("loadavg_after") for b in benches.values() if b["extra_info"].get("loadavg_after")
    ]
    one_min = [x[0] for x in loads]
    p("### Machine and run\n")
    dates = sorted(str(x.get("datetime"))[:19] for x in machines if x.get("datetime"))
    if dates:
        p(f"- date: {dates[0]} to {dates[-1]} (UTC)")
    p(f"- CPU: {m.get('cpu_model')} ({m.get('nproc')} cores), torch threads: {m.get('threads')}")
    p(f"- torch {m.get('torch')}, transformers {m.get('transformers')}")
    if one_min:
        p(
            f"- 1-min load average during the run: {min(one_min):.1f} to {max(one_min):.1f} "
            f"(on {m.get('nproc')} cores)"
        )
    p("")

    peaks = {
        b["extra_info"]["precision"]: b["extra_info"]
        for b in benches.values()
        if "peak_gflops" in b["extra_info"] and "n" in b["extra_info"]
    }
    if peaks:
        p("### Matmul peak (2048^3, the MFU denominator)\n")
        p("| precision | best GFLOP/s | median GFLOP/s | load before/after |")
        p("|---|---:|---:|---|")
        for prec in ("fp32", "bf16"):
            if prec in peaks:
                i = peaks[prec]
                p(f"| {prec} | {_f(i['peak_gflops'], 1)} | {_f(i['median_gflops'], 1)} | {_load(i)} |")
        p("")

    # MFU against the best matmul peak seen anywhere in the run (the per-benchmark figure uses the
    # best seen in its own process, which a busy machine can push down)
    best_peak: dict[str, float] = {}
    for b in benches.values():
        i = b["extra_info"]
        if "peak_gflops" in i and "precision" in i:
            best_peak[i["precision"]] = max(best_peak.get(i["precision"], 0.0), i["peak_gflops"])
        for part in i.get("per_loss", {}).values():
            best_peak[i["precision"]] = max(best_peak.get(i["precision"], 0.0), part["peak_gflops"])
    rows = train_rows(benches)
    for r in rows:
        r["mfu_run"] = r["achieved_gflops"] / best_peak[r["precision"]]
    if best_peak:
        p(
            "Best matmul peak seen in the run (MFU denominator): "
            + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in sorted(best_peak.items()))
            + "\n"
        )
    if rows or infos_of(benches, "trl+aries_lit interleaved"):
        if rows:
            p("### Training steps (4 pairs/step, max length 256)\n")
            p(
                "| model | framework | loss | precision | reference | benchmark | steps | s/step "
                "| tokens/step | tokens/s | pairs/s | model GFLOP/s | MFU | load before/after |"
            )
            p("|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
            for r in rows:
                p(
                    f"| {r['model']} | {r['framework']} | {r['loss']} | {r['precision']} | {r['reference']} "
                    f"| {r['source']} "
                    f"| {r['steps_measured']} | {_f(r['s_per_step'], 3)} | {_f(r['tokens_per_step'], 0)} "
                    f"| {_f(r['tokens_per_s'], 1)} | {_f(r['pairs_per_s'], 3)} "
                    f"| {_f(r['achieved_gflops'], 1)} "
                    f"| {r['mfu_run'] * 100:.1f}% | {_load(r)} |"
                )
            p("")

        sbs = []
        for prec in ("fp32", "bf16"):
            for ref in ("on_the_fly", "cached"):
                t = find(rows, framework="trl", precision=prec, reference=ref)
                a = find(
                    rows,
                    framework="aries_lit",
                    model="smollm2",
                    loss="dpo",
                    precision=prec,
                    reference=ref,
                    source="side by side",
                )
                if t and a:
                    sbs.append((prec, ref, t, a))
        if sbs:
            p("### TRL `DPOTrainer` vs aries_lit `dpo` (SmolLM2-135M-Instruct, same batches)\n")
            p(
                "| precision | reference | TRL s/step | TRL tokens/s | aries_lit s/step | aries_lit tokens/s "
                "| aries_lit / TRL tokens/s | target |"
            )
            p("|---|---|---:|---:|---:|---:|---:|---|")
            for prec, ref, t, a in sbs:
                target = {"bf16": ">= 2x", "fp32": ">= 1.5x"}[prec] if ref == "on_the_fly" else "-"
                ratio = a["tokens_per_s"] / t["tokens_per_s"]
                p(
                    f"| {prec} | {ref} | {_f(t['s_per_step'], 2)} | {_f(t['tokens_per_s'], 1)} "
                    f"| {_f(a['s_per_step'], 2)} | {_f(a['tokens_per_s'], 1)} | {ratio:.2f}x | {target} |"
                )
            p("")

        inter = infos_of(benches, "trl+aries_lit interleaved")
        if inter:
            p("### TRL vs aries_lit `dpo`, steps interleaved (same batches, same load)\n")
            p(
                "| pairs | precision | reference | TRL s/step (min) | aries_lit s/step (min) | TRL tokens/s "
                "| aries_lit tokens/s | ratio of tokens/s (of min steps) | per-step ratios | target |"
            )
            p("|---|---|---|---:|---:|---:|---:|---:|---|---|")
            order = lambda x: (x.get("pairs", "hh"), x["precision"], x["reference"] != "on_the_fly")  # noqa: E731
            for i in sorted(inter, key=order):
                t, a = i["trl"], i["aries_lit"]
                target = (
                    {"bf16": ">= 2x", "fp32": ">= 1.5x"}[i["precision"]]
                    if i["reference"] == "on_the_fly"
                    else "-"
                )
                p(
                    f"| {i.get('pairs', 'hh')} | {i['precision']} | {i['reference']} "
                    f"| {t['s_per_step']:.2f} ({t['min_s_per_step']:.2f}) "
                    f"| {a['s_per_step']:.2f} ({a['min_s_per_step']:.2f}) | {t['tokens_per_s']:.1f} "
                    f"| {a['tokens_per_s']:.1f} "
                    f"| {i['ratio_tokens_per_s']:.2f}x ({i['ratio_min_step']:.2f}x) "
                    f"| {', '.join(f'{x:.2f}' for x in i['per_step_ratios'])} | {target} |"
                )
            p("")

        cost = []
        for model in ("tiny", "smollm2"):
            for prec in ("fp32", "bf16"):
                for ref in ("on_the_fly", "cached"):
                    d = find(
                        rows,
                        framework="aries_lit",
                        model=model,
                        loss="dpo",
                        precision=prec,
                        reference=ref,
                        source="throughput",
                    )
                    if d is None:
                        continue
                    for loss in ("aries", "bt_aries"):
                        x = find(
                            rows, framework="aries_lit", model=model, loss=loss, precision=prec, reference=ref
                        )
                        if x is not None:
                            cost.append((model, prec, ref, loss, d, x))
        if cost:
            p("### ARIES step cost relative to DPO (same 4 pairs per step)\n")
            p(
                "| model | precision | reference | loss | DPO s/step | loss s/step | time ratio (mean) "
                "| per-step ratios (same batch) | tokens/pair DPO | tokens/pair ARIES (6 separate views) "
                "| token ratio |"
            )
            p("|---|---|---|---|---:|---:|---:|---|---:|---:|---:|")
            for model, prec, ref, loss, d, x in cost:
                dt = d["view_tokens_per_pair"]["separate"]
                xt = x["view_tokens_per_pair"]["separate"]
                steps = ", ".join(f"{b / a:.2f}" for a, b in zip(d["step_seconds"], x["step_seconds"]))
                p(
                    f"| {model} | {prec} | {ref} | {loss} | {_f(d['s_per_step'], 3)} "
                    f"| {_f(x['s_per_step'], 3)} | {x['s_per_step'] / d['s_per_step']:.2f}x | {steps} "
                    f"| {_f(dt, 1)} | {_f(xt, 1)} | {xt / dt:.2f}x |"
                )
            p("")

    losses_inter = infos_of(benches, "aries_lit interleaved losses")
    if losses_inter:
        p("### DPO, ARIES, BT_ARIES steps interleaved (one policy, 4 pairs/step, same load)\n")
        p(
            "| model | precision | reference | rounds | s/step dpo / aries / bt_aries "
            "| tokens/s dpo / aries / bt_aries | ARIES/DPO time (per step) | BT_ARIES/DPO time (per step) "
            "| view-token ratio | MFU dpo / aries / bt_aries |"
        )
        p("|---|---|---|---:|---|---|---|---|---:|---|")
        order = {"tiny": 0, "smollm2": 1}
        for i in sorted(
            losses_inter,
            key=lambda x: (order.get(x["model"], 9), x["precision"], x["reference"] != "on_the_fly"),
        ):
            pl, ra = i["per_loss"], i["ratios_vs_dpo"]
            names = ("dpo", "aries", "bt_aries")
            mfu = " / ".join(
                f"{pl[n]['achieved_gflops'] / best_peak[i['precision']] * 100:.0f}%" for n in names
            )

            def rat(n: str, ra: dict[str, Any] = ra) -> str:
                return f"{ra[n]['time']:.2f}x ({', '.join(f'{x:.2f}' for x in ra[n]['per_step'])})"

            p(
                f"| {i['model']} | {i['precision']} | {i['reference']} | {pl['dpo']['steps_measured']} "
                f"| {' / '.join(_f(pl[n]['s_per_step'], 2) for n in names)} "
                f"| {' / '.join(_f(pl[n]['tokens_per_s'], 0) for n in names)} "
                f"| {rat('aries')} | {rat('bt_aries')} | {ra['aries']['view_tokens']:.2f}x | {mfu} |"
            )
        p("")
        p(
            "(view-token ratio: tokens the model runs per ARIES step over those per DPO step, both with "
            "shared contexts; tokens/s count the views as separate sequences, as TRL counts them.)\n"
        )
        sep = [i for i in losses_inter if "aries@separate" in i["per_loss"]]
        if sep:
            p("### ARIES with shared contexts vs its six views as separate sequences (interleaved steps)\n")
            p(
                "| model | precision | reference | shared s/step | separate s/step | time ratio (per step) "
                "| tokens run per step shared / separate | token ratio | target |"
            )
            p("|---|---|---|---:|---:|---|---|---:|---|")
            for i in sep:
                a, b = i["per_loss"]["aries"], i["per_loss"]["aries@separate"]
                per = ", ".join(f"{x / y:.2f}" for x, y in zip(a["step_seconds"], b["step_seconds"]))
                ta, tb = a["processed_tokens_per_step"], b["processed_tokens_per_step"]
                p(
                    f"| {i['model']} | {i['precision']} | {i['reference']} | {a['s_per_step']:.2f} "
                    f"| {b['s_per_step']:.2f} | {a['s_per_step'] / b['s_per_step']:.2f}x ({per}) "
                    f"| {ta:,.0f} / {tb:,.0f} | {ta / tb:.2f}x | <= 0.75x |"
                )
            p("")

    counts = [
        b["extra_info"]
        for b in benches.values()
        if "view_tokens_per_pair" in b["extra_info"] and "pairs" in b["extra_info"]
    ]
    if counts:
        p("### View tokens per pair (context + response, mean over the benchmark pairs)\n")
        p(
            "| tokenizer | max length | DPO | ARIES, 6 separate views | ARIES, shared contexts "
            "| separate / DPO | shared / DPO |"
        )
        p("|---|---:|---:|---:|---:|---:|---:|")
        for c in counts:
            for ml, v in c["view_tokens_per_pair"].items():
                p(
                    f"| {c['model']} | {ml} | {_f(v['dpo'], 1)} | {_f(v['aries_separate'], 1)} "
                    f"| {_f(v['aries_shared_context'], 1)} | {v['aries_over_dpo_separate']:.2f}x "
                    f"| {v['aries_over_dpo_shared']:.2f}x |"
                )
        p("")

    gen = [b["extra_info"] for b in benches.values() if "completion_tokens" in b["extra_info"]]
    if gen:
        naive = next((g for g in gen if g["batch_size"] == 1), None)
        p("### Generation: SR collection, SmolLM2, 16 GSM8K prompts x 2 turns, max_new_tokens 64\n")
        p(
            "| backend | batch | dtype | generated tokens | seconds | tokens/s | vs naive loop "
            "| load before/after |"
        )
        p("|---|---:|---|---:|---:|---:|---:|---|")
        for g in gen:
            rel = f"{g['tokens_per_s'] / naive['tokens_per_s']:.2f}x" if naive else "-"
            p(
                f"| {g['backend']} | {g.get('batch_size', '-')} | {g.get('dtype', '-')} "
                f"| {g['completion_tokens']} "
                f"| {_f(g['seconds'], 1)} | {_f(g['tokens_per_s'], 1)} | {rel} | {_load(g)} |"
            )
        p("")

    adam = {b["extra_info"]["fused"]: b for b in benches.values() if "fused" in b["extra_info"]}
    if adam:
        p("### AdamW step alone (SmolLM2 parameters, fp32)\n")
        p("| implementation | mean s | min s |")
        p("|---|---:|---:|")
        for fused, b in sorted(adam.items()):
            label = "torch.optim.AdamW(fused=True)" if fused else "torch.optim.AdamW() (aries_lit default)"
            p(f"| {label} | {b['stats']['mean']:.3f} | {b['stats']['min']:.3f} |")
        p("")

    eq = next((b["extra_info"] for b in benches.values() if "trl_loss" in b["extra_info"]), None)
    if eq:
        p("### Same batch, same loss (TRL vs aries_lit, fp32, perturbed policy vs SmolLM2 reference)\n")
        p("| quantity | TRL | aries_lit | abs diff |")
        p("|---|---:|---:|---:|")
        p(f"| DPO loss | {eq['trl_loss']:.7f} | {eq['aries_lit_loss']:.7f} | {eq['loss_abs_diff']:.1e} |")
        p(
            f"| mean log pi(y_w given x) | {eq['trl_logps_chosen']:.4f} | {eq['aries_lit_logps_chosen']:.4f} "
            f"| {eq['logps_chosen_abs_diff']:.1e} |"
        )
        p(
            f"| mean log pi(y_l given x) | {eq['trl_logps_rejected']:.4f} "
            f"| {eq['aries_lit_logps_rejected']:.4f} "
            f"| {abs(eq['trl_logps_rejected'] - eq['aries_lit_logps_rejected']):.1e} |"
        )
        p(
            f"\nToken sequences identical: {not eq['mismatched_rows']} "
            f"(same padded shape: {eq['same_batch_shape']}, {eq['nonpad_tokens']} non-pad tokens). "
            "With conversational records (TRL applying the chat template itself) the prompt ids are "
            f"identical ({eq['conversational_prompt_ids_identical']}) and each completion has "
            f"{eq['conversational_extra_completion_tokens']} extra token(s) (the template's newline after "
            "`<|im_end|>`).\n"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
