"""The batched, prefix-sharing scorer against a naive full forward per pair; batched generation."""

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config

from nse_engine.evaluation.scoring import score_targets
from nse_engine.model.generation import greedy_continuations
from nse_engine.model.tokens import encode_prompt, encode_target
from tiny import TINY_CONFIGS, make_model, make_tokenizer

PAIRS = [
    ("The capital of France is", "Paris"),
    ("The capital of France is", "Berlin"),
    ("Toko Yasuda plays the", "guitar"),
    ("I think", "that you should know this"),
    ("The capital of France is", "Paris"),  # a repeat
    ("Rome", "is the capital of Italy"),
    ("I think", "so"),
    ("Danielle Darrieux is a native speaker of", "French"),
]


def naive(model, tokenizer, prompt, target):
    """Mean log-prob and top-1 share from the full logits of one unpadded sequence."""
    p, t = encode_prompt(tokenizer, prompt), encode_target(tokenizer, target)
    logprobs = torch.log_softmax(model(torch.tensor([p + t])).logits[0].float(), dim=-1)  # (seq, vocab)
    rows = logprobs[len(p) - 1 : len(p) - 1 + len(t)]  # (target, vocab)
    picked = rows[torch.arange(len(t)), torch.tensor(t)]
    return picked.mean().item(), (rows.argmax(-1) == torch.tensor(t)).float().mean().item()


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
@pytest.mark.parametrize("batch_size", [1, 3])
def test_batched_scores_equal_naive_full_forward(kind, batch_size):
    tokenizer = make_tokenizer()
    model = make_model(kind, tokenizer)
    scores = score_targets(model, tokenizer, PAIRS, batch_size=batch_size)
    assert len(scores) == len(PAIRS)
    for (prompt, target), score in zip(PAIRS, scores):
        mean_logprob, top1 = naive(model, tokenizer, prompt, target)
        assert score.mean_logprob == pytest.approx(mean_logprob, abs=1e-4)
        assert score.top1 == pytest.approx(top1)
        assert score.n_tokens == len(encode_target(tokenizer, target))


def test_post_head_softcapping_is_kept():
    """Gemma 2 soft-caps its logits after the head; gathering before the head must not skip that."""
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=72, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        final_logit_softcapping=0.5, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    for (prompt, target), score in zip(PAIRS, score_targets(model, tokenizer, PAIRS)):
        assert score.mean_logprob == pytest.approx(naive(model, tokenizer, prompt, target)[0], abs=1e-4)


def test_scoring_leaves_no_hook_behind():
    tokenizer = make_tokenizer()
    model = make_model("llama", tokenizer)
    ids = torch.tensor([encode_prompt(tokenizer, "The capital of France is")])
    before = model(ids).logits
    score_targets(model, tokenizer, PAIRS)
    assert torch.equal(model(ids).logits, before)


def test_progress_counts_distinct_pairs():
    tokenizer = make_tokenizer()
    model = make_model("gpt2", tokenizer)
    seen = []
    score_targets(model, tokenizer, PAIRS, batch_size=2, on_batch=seen.append)
    assert sum(seen) == len(set(PAIRS))


@pytest.mark.parametrize("kind", ["gpt2", "gptj", "gpt_neox", "llama", "qwen2"])
def test_batched_greedy_generation_equals_one_by_one(kind):
    tokenizer = make_tokenizer()
    model = make_model(kind, tokenizer)
    prompts = [p for p, _ in PAIRS]
    limits = [5, 3, 8, 2, 5, 1, 4, 6]
    batched = greedy_continuations(model, tokenizer, prompts, limits, batch_size=3)
    single = [greedy_continuations(model, tokenizer, [p], n)[0] for p, n in zip(prompts, limits)]
    assert batched == single
    for prompt, text, n in zip(prompts, batched, limits):
        ids = torch.tensor([encode_prompt(tokenizer, prompt)])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        assert text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
