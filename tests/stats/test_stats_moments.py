"""The streaming estimate of E[k kᵀ] equals the direct one; padding, BOS, early stop, cancellation."""

import pytest
import torch

from nse_engine.errors import Cancelled, NseError
from nse_engine.paths import cache_dir
from nse_engine.progress import JobControl, silent
from nse_engine.stats.corpus import load_corpus, token_sequences
from nse_engine.stats.second_moment import PHASE, StatsSpec, layer_stats


def direct_moment(loaded, points, layer, sequences):
    """Every key of `sequences`, one unpadded sequence at a time through the whole model: KᵀK / N in float64."""
    keys = []
    handle = points.mlp_out(layer).register_forward_pre_hook(lambda module, args: keys.append(args[0][0].double()))
    try:
        with torch.no_grad():
            for sequence in sequences:
                loaded.model(input_ids=torch.tensor([sequence]))
    finally:
        handle.remove()
    K = torch.cat(keys)  # (N, d_ff)
    return K.T @ K / K.shape[0], K.shape[0]


@pytest.mark.parametrize("kind", ["llama", "gpt2", "gpt_neox"])
def test_streaming_equals_direct(loaded_factory, txt_corpus, kind):
    loaded, points = loaded_factory(kind)
    spec = StatsSpec(corpus=str(txt_corpus), n_tokens=300, seq_len=24, batch_size=3)
    stats = layer_stats(loaded, points, [1, 2], spec)
    sequences = token_sequences(load_corpus(txt_corpus), loaded.tokenizer, 300, 24, 0, silent(), PHASE)
    assert {len(s) for s in sequences} != {24}, "the sample should need padding"
    for layer in (1, 2):
        expected, n = direct_moment(loaded, points, layer, sequences)
        assert n == 300
        got = stats[layer].moment
        assert got.dtype == torch.float64 and got.device.type == "cpu" and got.shape == (points.d_ff, points.d_ff)
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6 * expected.abs().max().item())


@pytest.mark.parametrize("kind", ["llama", "gpt2", "gpt_neox"])
def test_bf16_products_give_the_float32_moment_within_bf16_rounding(loaded_factory, txt_corpus, kind):
    """The bf16 pass (bf16 forward, bf16 kᵀk summed in float32) lands within a few bf16 roundings
    (2⁻⁸ each) of the exact moment, and still returns float64."""
    loaded, points = loaded_factory(kind)
    spec = StatsSpec(corpus=str(txt_corpus), n_tokens=300, seq_len=24, batch_size=3, precision="bfloat16")
    stats = layer_stats(loaded, points, [1, 2], spec)
    sequences = token_sequences(load_corpus(txt_corpus), loaded.tokenizer, 300, 24, 0, silent(), PHASE)
    for layer in (1, 2):
        expected, _ = direct_moment(loaded, points, layer, sequences)
        got = stats[layer].moment
        assert got.dtype == torch.float64 and got.shape == (points.d_ff, points.d_ff)
        assert torch.allclose(got, got.T)
        error = float((got - expected).norm() / expected.norm())
        assert 0 < error < 0.02, error


def test_an_unknown_precision_is_refused(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    with pytest.raises(NseError, match="precision must be one of float32, bfloat16, not 'float16'"):
        layer_stats(loaded, points, [1], StatsSpec(corpus=str(txt_corpus), n_tokens=300, precision="float16"))


def test_sequences_start_with_one_bos_and_count_exactly(loaded_factory, txt_corpus):
    plain, _ = loaded_factory(add_bos=False)
    adds_bos, _ = loaded_factory(add_bos=True)
    assert adds_bos.tokenizer("Paris").input_ids[0] == adds_bos.tokenizer.bos_token_id
    corpus = load_corpus(txt_corpus)
    a = token_sequences(corpus, plain.tokenizer, 500, 24, 0, silent(), PHASE)
    b = token_sequences(corpus, adds_bos.tokenizer, 500, 24, 0, silent(), PHASE)
    assert a == b
    bos = plain.tokenizer.bos_token_id
    assert all(s[0] == bos and bos not in s[1:] and len(s) <= 24 for s in a)
    assert sum(len(s) for s in a) == 500
    smaller = token_sequences(corpus, plain.tokenizer, 200, 24, 0, silent(), PHASE)
    assert smaller[:-1] == a[: len(smaller) - 1]  # a smaller sample is a prefix of a larger one
    assert token_sequences(corpus, plain.tokenizer, 500, 24, 1, silent(), PHASE) != a


def test_padding_does_not_change_the_result(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    unpadded = layer_stats(loaded, points, [2], StatsSpec(corpus=str(txt_corpus), n_tokens=400, seq_len=24, batch_size=1))[2]
    for other in (5, 64):
        spec = StatsSpec(corpus=str(txt_corpus), n_tokens=400, seq_len=24, batch_size=other)
        # batch_size is not part of the cache key: drop the cached file to compute afresh
        padded = layer_stats(loaded, points, [2], spec)
        padded[2].path.unlink()
        padded = layer_stats(loaded, points, [2], spec)[2]
        assert not padded.cached
        assert torch.allclose(padded.moment, unpadded.moment, rtol=1e-5, atol=1e-7)


def test_stops_after_the_last_requested_layer(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    reached = []
    handles = [
        points.blocks[3].register_forward_pre_hook(lambda *a: reached.append("block 3")),
        points.lm_head.register_forward_pre_hook(lambda *a: reached.append("lm head")),
        points.mlp_out(1).register_forward_hook(lambda *a: reached.append("layer 1 projection output")),
    ]
    loaded.model.train()
    try:
        layer_stats(loaded, points, [0, 1], StatsSpec(corpus=str(txt_corpus), n_tokens=100, seq_len=24))
    finally:
        for handle in handles:
            handle.remove()
    assert reached == []
    assert loaded.model.training, "the model's train/eval mode is restored"
    assert not points.mlp_out(0)._forward_pre_hooks and not points.mlp_out(1)._forward_pre_hooks


def test_cancel_raises_and_leaves_no_cache(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    seen = []

    def on_progress(p):
        seen.append(p)
        if p.phase == PHASE and p.done > 0:
            control.cancel()

    control = JobControl(on_progress)
    with pytest.raises(Cancelled):
        layer_stats(loaded, points, [1, 2], StatsSpec(corpus=str(txt_corpus), n_tokens=400, seq_len=24, batch_size=2), control)
    assert any(p.total == 400 for p in seen)
    stats = cache_dir() / "stats"
    assert not stats.exists() or not any(stats.iterdir())


def test_rejects_layers_the_model_lacks(loaded_factory, txt_corpus):
    from nse_engine.errors import NseError

    loaded, points = loaded_factory("llama")
    with pytest.raises(NseError, match="layers 0..3"):
        layer_stats(loaded, points, [4], StatsSpec(corpus=str(txt_corpus), n_tokens=100))
