"""Views, collator and the one-forward log-probs."""

from __future__ import annotations

import pytest
import torch

from aries_lit.data.collator import ViewCollator, split_views
from aries_lit.data.views import ViewTokenizer
from aries_lit.losses.base import ALL_VIEWS, DIRECT_CHOSEN, REFINE_L_CHOSEN, REFINE_W_REJECTED
from aries_lit.models import load_causal_lm, load_tokenizer
from aries_lit.modules.logprobs import sequence_logprobs
from aries_lit.prompts.templates import RefinementTemplate, chat_context, end_of_turn

RECORDS = [
    {"id": "a", "prompt": "What is 2+3?", "chosen": "2+3 = 5. The answer is 5.", "rejected": "It is 7."},
    {"id": "b", "prompt": "Name a colour.", "chosen": "Blue.", "rejected": "The answer is a number: 12"},
    {"id": "c", "prompt": "Say hi.", "chosen": "Hi there!", "rejected": "no"},
]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    torch.manual_seed(0)
    return load_causal_lm(str(tiny_model_dir)).eval()


def test_refinement_context_holds_the_right_previous_answer(tok):
    template = RefinementTemplate.from_spec("paper")
    vt = ViewTokenizer(tok, ALL_VIEWS, template, max_length=1024, max_context_length=900)
    texts = vt.context_texts(RECORDS[0])
    assert texts["direct"] == chat_context(tok, "What is 2+3?")
    assert texts["refine_l"] == chat_context(tok, template.fill("What is 2+3?", "It is 7."))
    assert texts["refine_w"] == chat_context(tok, template.fill("What is 2+3?", "2+3 = 5. The answer is 5."))
    assert "EXAMPLE RESPONSE:\nIt is 7.\nNow, refine" in texts["refine_l"]


def test_only_needed_parts_are_tokenized(tok):
    vt = ViewTokenizer(tok, (DIRECT_CHOSEN, REFINE_L_CHOSEN), RefinementTemplate.from_spec("short"))
    features = vt(RECORDS[0])
    assert set(features) == {"ctx.direct", "ctx.refine_l", "resp.chosen"}


def test_labels_mask_the_whole_context(tok):
    vt = ViewTokenizer(
        tok, ALL_VIEWS, RefinementTemplate.from_spec("paper"), max_length=1024, max_context_length=900
    )
    features = [vt(r) for r in RECORDS]
    batch = ViewCollator(ALL_VIEWS, tok.pad_token_id)(features)
    assert batch["input_ids"].shape[0] == len(ALL_VIEWS) * len(RECORDS)
    for row, (view, b) in enumerate((v, b) for v in ALL_VIEWS for b in range(len(RECORDS))):
        ctx_name, resp_name = view.split("/")
        ctx, resp = features[b][f"ctx.{ctx_name}"], features[b][f"resp.{resp_name}"]
        mask = batch["loss_mask"][row]
        assert not mask[: len(ctx)].any()
        assert mask[len(ctx) : len(ctx) + len(resp)].all()
        assert int(mask.sum()) == len(resp)
        assert batch["input_ids"][row, len(ctx) : len(ctx) + len(resp)].tolist() == resp
        assert tok.decode(resp).endswith("<|im_end|>")


def test_truncation_is_counted(tok):
    long = {"id": "x", "prompt": "word " * 300, "chosen": "yes " * 200, "rejected": "no"}
    vt = ViewTokenizer(
        tok, ALL_VIEWS, RefinementTemplate.from_spec("paper"), max_length=400, max_context_length=300
    )
    features = vt(long)
    assert all(len(features[f"ctx.{c}"]) <= 300 for c in ("direct", "refine_l", "refine_w"))
    assert vt.stats["truncated/context/direct"] == 1 and vt.stats["truncated/response/chosen"] == 1
    longest = max(len(features[f"ctx.{c}"]) for c in ("direct", "refine_l", "refine_w"))
    assert longest + len(features["resp.chosen"]) <= 400
    dropper = ViewTokenizer(
        tok, ALL_VIEWS, RefinementTemplate.from_spec("paper"), 400, 300, truncation="drop"
    )
    assert dropper(long) is None and dropper.stats["dropped/context_too_long"] == 1


def _separate_logp(model, ctx, resp):
    ids = torch.tensor([ctx + resp])
    logits = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
    targets = ids[0, 1:]
    lp = logits.gather(-1, targets[:, None])[:, 0]
    return lp[len(ctx) - 1 :].sum()


@pytest.mark.parametrize("chunk_size", [4096, 7])
def test_one_concatenated_forward_equals_separate_forwards(tok, model, chunk_size):
    vt = ViewTokenizer(
        tok, ALL_VIEWS, RefinementTemplate.from_spec("paper"), max_length=1024, max_context_length=900
    )
    features = [vt(r) for r in RECORDS]
    batch = ViewCollator(ALL_VIEWS, tok.pad_token_id)(features)
    with torch.no_grad():
        sums, counts = sequence_logprobs(
            model, batch["input_ids"], batch["attention_mask"], batch["loss_mask"], chunk_size=chunk_size
        )
    per_view = split_views(sums, batch["views"], len(RECORDS))
    for view in (DIRECT_CHOSEN, REFINE_L_CHOSEN, REFINE_W_REJECTED):
        for b, f in enumerate(features):
            ctx_name, resp_name = view.split("/")
            expected = _separate_logp(model, f[f"ctx.{ctx_name}"], f[f"resp.{resp_name}"])
            torch.testing.assert_close(per_view[view][b], expected, atol=2e-4, rtol=1e-4)
    assert counts.tolist() == [len(f[f"resp.{v.split('/')[1]}"]) for v in ALL_VIEWS for f in features]


def test_chunked_logprobs_gradients_match(tok, model):
    vt = ViewTokenizer(tok, ALL_VIEWS, RefinementTemplate.from_spec("short"))
    batch = ViewCollator(ALL_VIEWS, tok.pad_token_id)([vt(r) for r in RECORDS])
    grads = []
    for chunk in (4096, 5):
        model.zero_grad()
        sums, _ = sequence_logprobs(
            model, batch["input_ids"], batch["attention_mask"], batch["loss_mask"], chunk
        )
        sums.sum().backward()
        grads.append(model.model.embed_tokens.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("views", [ALL_VIEWS, ("direct/chosen", "direct/rejected"), ("refine_l/chosen",)])
def test_shared_context_rows_give_the_same_logprobs_as_one_row_per_view(tok, model, views):
    from aries_lit.data.collator import SharedContextCollator
    from aries_lit.modules.logprobs import packed_logprobs

    vt = ViewTokenizer(
        tok, views, RefinementTemplate.from_spec("paper"), max_length=1024, max_context_length=900
    )
    features = [vt(r) for r in RECORDS]
    plain = ViewCollator(views, tok.pad_token_id)(features)
    packed = SharedContextCollator(views, tok.pad_token_id)(features)
    contexts = {v.split("/")[0] for v in views}
    assert packed["input_ids"].shape[0] == len(contexts) * len(RECORDS)  # one row per (pair, context)
    with torch.no_grad():
        a, ca = sequence_logprobs(model, plain["input_ids"], plain["attention_mask"], plain["loss_mask"])
        b, cb = packed_logprobs(
            model,
            packed["input_ids"],
            packed["attention_mask"],
            packed["position_ids"],
            packed["pred_index"],
            packed["target_ids"],
            packed["out_index"],
            len(views) * 3,
        )
    torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)
    assert ca.tolist() == cb.tolist()
    tokens_plain = int(plain["attention_mask"].sum())
    tokens_packed = sum(len(features[0][f"ctx.{c}"]) for c in contexts)  # shared contexts are not repeated
    assert tokens_packed < tokens_plain or len(views) == 1


def test_chat_template_modes_always_auto_never(tok):
    """``always`` renders every prompt; ``auto`` is TRL's (messages rendered, plain strings raw,
    EOS after a raw prompt's responses); ``never`` is plain text throughout."""
    template = RefinementTemplate.from_spec("short")
    plain = RECORDS[0]
    chat = {**plain, "prompt_messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "What is 2+3?"}]}  # fmt: skip

    def build(mode: str) -> ViewTokenizer:
        return ViewTokenizer(tok, ALL_VIEWS, template, max_length=1024, chat_template=mode)

    always, auto, never = build("always"), build("auto"), build("never")
    assert always.context_texts(plain)["direct"] == chat_context(tok, "What is 2+3?")
    assert (
        auto.context_texts(plain)
        == never.context_texts(plain)
        == {
            "direct": "What is 2+3?",
            "refine_l": template.fill("What is 2+3?", "It is 7."),
            "refine_w": template.fill("What is 2+3?", "2+3 = 5. The answer is 5."),
        }
    )
    assert auto.context_texts(chat)["direct"] == chat_context(tok, chat["prompt_messages"])
    assert never.context_texts(chat)["direct"] == "What is 2+3?"  # the system turn is dropped
    assert auto.response_end_text(plain) == never.response_end_text(chat) == tok.eos_token
    assert auto.response_end_text(chat) == always.response_end_text(plain) == end_of_turn(tok)
    eos = tok(tok.eos_token, add_special_tokens=False)["input_ids"]
    assert auto(plain)["resp.chosen"][-len(eos) :] == eos
    with pytest.raises(ValueError, match="chat_template must be one of always, auto, never, not 'trl'"):
        build("trl")
    with pytest.raises(ValueError, match="reward models read the rendered conversation"):
        ViewTokenizer(tok, ALL_VIEWS, template, response_end="<|im_end|>\n", chat_template="auto")
