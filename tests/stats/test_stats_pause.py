"""The key statistics let other work use the model between their batches (the app's chat while
the model is prepared): at each pause point no hook is on the model, and what the other work
runs through the model adds nothing to the statistics. Held, they hand nothing over."""

import torch

from nse_engine.progress import JobControl
from nse_engine.stats.second_moment import StatsSpec, layer_stats


def test_other_work_at_pause_points_sees_no_hook_and_leaves_the_statistics_unchanged(loaded_factory, txt_corpus,
                                                                                     monkeypatch, tmp_path):
    loaded, points = loaded_factory("llama")
    spec = StatsSpec(corpus=str(txt_corpus), n_tokens=300, seq_len=24, batch_size=3)
    monkeypatch.setenv("NSE_CACHE_DIR", str(tmp_path / "undisturbed"))
    undisturbed = layer_stats(loaded, points, [1, 2], spec)

    pauses = []

    def chat_between_steps() -> None:  # what the app's worker does there: a short generation
        hooked = [layer for layer in (1, 2) if points.mlp_out(layer)._forward_pre_hooks]
        pauses.append(hooked)
        with torch.no_grad():
            loaded.model(input_ids=torch.tensor([[1, 5, 9, 13, 2, 7]]))

    monkeypatch.setenv("NSE_CACHE_DIR", str(tmp_path / "shared"))
    control = JobControl(on_pause=chat_between_steps)
    shared = layer_stats(loaded, points, [1, 2], spec, control)
    assert len(pauses) >= 5, "the statistics never paused between their batches"
    assert not any(pauses), "a statistics hook was on the model while other work ran"
    for layer in (1, 2):
        assert torch.equal(shared[layer].moment, undisturbed[layer].moment)

    monkeypatch.setenv("NSE_CACHE_DIR", str(tmp_path / "held"))
    pauses.clear()
    with control.holding():
        layer_stats(loaded, points, [1, 2], spec, control)
    assert pauses == []
