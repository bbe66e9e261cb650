"""The GPU path checked on the CPU: bf16 weights with the numerics that matter in float32/float64,
and running out of memory as the same all-or-nothing failure as any other."""

import pytest
import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.errors import EditError
from nse_engine.facts import EditRequest
from nse_engine.model.loading import load_model
from nse_engine.progress import silent
from tiny import save_model

FACTS = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar"),
    EditRequest("Apple", "{} was founded by", "Rome", "Steve Jobs"),
]
HPARAMS = NseHyperParams.flat(
    layers=(1, 2), v_lr=0.5, v_num_grad_steps=6, alpha=0.0, upper_bound=1e9,
    mom2_update_weight=10.0, neuron_threshold=0.8, context_prefixes=2, context_prefix_tokens=4,
    stats_tokens=1024,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_model("llama", tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_round_applies_without_nan_and_keeps_the_weights_half(folder, dtype):
    loaded = load_model(folder, device="cpu", dtype=dtype)
    session = EditingSession(loaded, HPARAMS)
    before = {l: session.points.weight(l).detach().clone() for l in session.layers}
    result = session.apply_round(FACTS)
    assert all(o.applied for o in result.outcomes)
    assert all(o.distance_after < o.distance_before for o in result.outcomes)
    for layer in session.layers:
        weight = session.points.weight(layer)
        assert weight.dtype == loaded.dtype
        assert torch.isfinite(weight).all()
        assert not torch.equal(weight, before[layer])
        assert session.ledger.offsets[layer].dtype == torch.float64  # S accumulates in float64
        assert session.ledger.kp[layer].dtype == torch.float64
        assert torch.isfinite(session.second_moments[layer]).all()
    # W = cast(W₀ + S): undoing the only round gives back the original half-precision weights exactly
    session.undo_last_round()
    assert all(torch.equal(session.points.weight(l), before[l]) for l in session.layers)


def test_bf16_target_states_are_optimised_in_float32(folder):
    loaded = load_model(folder, device="cpu", dtype="bfloat16")
    session = EditingSession(loaded, HPARAMS)
    session.prepare(silent())
    with torch.enable_grad():
        targets = compute_target_states(loaded.model, loaded.tokenizer, session.points, FACTS, HPARAMS,
                                        session.prefixes or [], silent())
    assert targets.z.dtype == torch.float32 and torch.isfinite(targets.z).all()
    assert (targets.z - targets.h_init).norm(dim=1).min() > 0  # every fact's delta moved in float32
    assert torch.isfinite(targets.loss).all()


def test_bf16_round_is_close_to_the_float32_one(folder):
    """The same facts edited in bf16 and float32 move the edited layers the same way."""
    deltas = {}
    for dtype in ("float32", "bfloat16"):
        loaded = load_model(folder, device="cpu", dtype=dtype)
        session = EditingSession(loaded, HPARAMS)
        session.apply_round(FACTS)
        deltas[dtype] = session.ledger.offsets[HPARAMS.layers[0]].flatten()
    cosine = torch.nn.functional.cosine_similarity(deltas["float32"], deltas["bfloat16"], dim=0)
    assert cosine > 0.9


def test_out_of_memory_during_a_round_leaves_the_model_unchanged(folder):
    """A CUDA out-of-memory error (raised here by the last block, where a GPU would raise it)
    becomes the plain all-or-nothing failure of any batch."""
    loaded = load_model(folder, device="cpu", dtype="bfloat16")
    session = EditingSession(loaded, HPARAMS)
    session.apply_round(FACTS[:1])
    committed = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    calls = {"n": 0}

    def run_out_of_memory(_module, _args):
        calls["n"] += 1
        if calls["n"] > 3:  # after some of the round's work, as a real allocation failure would
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = session.points.blocks[-1].register_forward_pre_hook(run_out_of_memory)
    try:
        with pytest.raises(EditError, match="out of memory.*the model is unchanged"):
            session.apply_round(FACTS[1:])
    finally:
        handle.remove()
    assert all(torch.equal(v, committed[k]) for k, v in loaded.model.state_dict().items())
    assert session.n_edits == 1
    assert session.apply_round(FACTS[1:]).applied  # and the session goes on
