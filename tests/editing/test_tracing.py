"""The fast paths give the same numbers as a plain full forward pass, for every family."""

import pytest
import torch

from nse_engine.editing.target_state import _layouts
from nse_engine.editing.tracing import LayerByLayerTrace, Reads, SuffixReplay, trace_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from tiny import TINY_CONFIGS, make_model, make_tokenizer

REQUESTS = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Paris", "The Eiffel Tower is in {}, which is in", "Italy", "France"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar"),
]


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
def test_suffix_replay_equals_full_forward(kind):
    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    batch = _layouts(tok, REQUESTS, ["I think that. "], 1.0, torch.device("cpu"))[0]  # repeated-subject rows too
    layer = 1
    replay = SuffixReplay(model, points, layer, batch.input_ids, batch.attention_mask, batch.position_ids, batch.split)

    # reference: the full model on the same left-aligned batch, with the same delta injected
    delta = torch.randn(batch.input_ids.shape[0], points.hidden_size) * 0.5
    def inject(_m, _a, out):
        h = out[0] if isinstance(out, tuple) else out
        h = h.clone()
        h[:, batch.split] += delta
        return (h, *out[1:]) if isinstance(out, tuple) else h
    captured = {}
    handle_in = points.blocks[layer].register_forward_hook(inject)
    handle_out = points.blocks[-1].register_forward_hook(
        lambda _m, _a, out: captured.setdefault("h", out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        model.base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         position_ids=batch.position_ids)
    handle_in.remove()
    handle_out.remove()
    expected = captured["h"][:, batch.split:]

    h = replay.hidden.clone()
    h[:, 0] += delta
    for _ in range(2):  # replaying twice must not be disturbed by the first run's cache updates
        got = replay.run(h)
    real = batch.attention_mask[:, batch.split:].bool()
    assert torch.allclose(got[real], expected[real], atol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_trace_states_reads_keys_and_states(kind):
    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    ids = torch.tensor([tok("The capital of France is Paris").input_ids])
    mask = torch.ones_like(ids)
    keys_seen, states_seen = {}, {}
    h1 = points.mlp_out(1).register_forward_pre_hook(lambda _m, a: keys_seen.setdefault(1, a[0]))
    h2 = points.blocks[2].register_forward_hook(
        lambda _m, _a, o: states_seen.setdefault(2, o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    h1.remove()
    h2.remove()
    rows, cols = torch.tensor([0, 0]), torch.tensor([2, 4])
    keys, state = trace_states(model, points, Reads(ids, mask, rows, cols), [1], 2)
    assert torch.allclose(keys[1], keys_seen[1][0, [2, 4]])
    assert torch.allclose(state, states_seen[2][0, [2, 4]])


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
def test_layer_by_layer_trace_sees_each_update_of_the_layers_below(kind):
    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    texts = ["The capital of France is", "Toko Yasuda plays the guitar"]
    ids = torch.tensor([tok(t).input_ids[:5] for t in texts])
    mask = torch.ones_like(ids)
    mask[1, :1] = 0
    rows, cols = torch.tensor([0, 1, 1]), torch.tensor([4, 2, 4])
    state_reads = torch.tensor([2, 0])  # the state is wanted at some reads only, in any order
    layers = [1, 2, 3]
    reads = Reads(ids, mask, rows, cols)
    trace = LayerByLayerTrace(model, points, reads, layers, layers[-1], state_reads)
    torch.manual_seed(0)
    for layer in layers:
        keys, state = trace.keys_and_state(layer)
        expected_keys, expected_state = trace_states(model, points, reads, [layer], layers[-1])
        assert torch.allclose(keys, expected_keys[layer], atol=1e-5)
        assert torch.allclose(state, expected_state[state_reads], atol=1e-5)
        with torch.no_grad():  # the edit of this layer, seen by the next layer's keys
            weight = points.weight_view(layer)
            weight += 0.5 * torch.randn_like(weight)


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_batched_target_states_match_the_plain_per_fact_loop(kind):
    from nse_engine.editing.hparams import NseHyperParams
    from nse_engine.editing.reference import per_fact_target_state
    from nse_engine.editing.target_state import compute_target_states
    from nse_engine.progress import JobControl

    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    hp = NseHyperParams.flat(layers=(1, 2), v_lr=0.2, v_num_grad_steps=5, alpha=0.0,
                             upper_bound=1e9, mom2_update_weight=1.0, neuron_threshold=0.8)
    prefixes = ["I think that. ", "Because of the rain. "]
    with torch.enable_grad():
        batched = compute_target_states(model, tok, points, REQUESTS, hp, prefixes, JobControl(), chunk_size=2).z
        plain = torch.stack([per_fact_target_state(model, tok, points, r, hp, prefixes) for r in REQUESTS])
    assert torch.allclose(batched, plain, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("kind", ["llama", "gpt_neox"])
def test_facts_that_stop_early_leave_the_others_unchanged(kind):
    """With a stop threshold that some facts reach within a few steps, the rows of stopped facts
    are dropped from the replay mid-optimisation; every z must still equal the plain loop's."""
    from nse_engine.editing.hparams import NseHyperParams
    from nse_engine.editing.reference import per_fact_target_state
    from nse_engine.editing.target_state import compute_target_states
    from nse_engine.progress import JobControl

    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    hp = NseHyperParams.flat(layers=(1, 2), v_lr=0.5, v_num_grad_steps=8, alpha=0.0,
                             upper_bound=1e9, mom2_update_weight=1.0, neuron_threshold=0.8)
    prefixes = ["I think that. "]
    with torch.enable_grad():
        first = compute_target_states(model, tok, points, REQUESTS, hp.with_overrides(v_num_grad_steps=1),
                                      prefixes, JobControl(), stop_nll=0.0)
        lowest, second = first.loss.sort().values[:2].tolist()  # the losses before any step
        stop = (lowest + second) / 2  # one fact starts below it, and none sits on it (no rounding tie)
        batched = compute_target_states(model, tok, points, REQUESTS, hp, prefixes, JobControl(), stop_nll=stop)
        plain = torch.stack([per_fact_target_state(model, tok, points, r, hp, prefixes, stop) for r in REQUESTS])
    assert batched.steps.min() < batched.steps.max()  # some facts stopped early, others went on
    assert torch.allclose(batched.z, plain, atol=1e-3, rtol=1e-3)
