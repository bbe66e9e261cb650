"""The statistics cache: hits reuse the file, anything that changes the keys or damages the file recomputes."""

import hashlib
import json
import logging
import shutil

import pytest
import torch

from nse_engine.stats.cache import StatsKey
from nse_engine.stats.second_moment import StatsSpec, layer_stats


def spec_for(corpus, **changes):
    return StatsSpec(corpus=str(corpus), n_tokens=changes.pop("n_tokens", 200), seq_len=changes.pop("seq_len", 24), **changes)


def count_forwards(points):
    """A counter of forward passes through block 0 (the real model, no mocks)."""
    calls = []
    points.blocks[0].register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


def test_hit_returns_identical_tensors_without_a_forward_pass(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    first = layer_stats(loaded, points, [1, 2], spec_for(txt_corpus))
    assert not any(s.cached for s in first.values())
    assert first[1].path != first[2].path
    mtimes = {layer: s.path.stat().st_mtime_ns for layer, s in first.items()}
    forwards = count_forwards(points)
    again = layer_stats(loaded, points, [1, 2], spec_for(txt_corpus))
    assert forwards == []
    for layer in (1, 2):
        assert again[layer].cached
        assert torch.equal(again[layer].moment, first[layer].moment)
        assert again[layer].tokens == 200
        assert again[layer].path.stat().st_mtime_ns == mtimes[layer]


def test_only_missing_layers_are_computed(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    layer_stats(loaded, points, [2], spec_for(txt_corpus))
    both = layer_stats(loaded, points, [2, 1], spec_for(txt_corpus))
    assert list(both) == [1, 2]
    assert both[2].cached and not both[1].cached


def test_key_covers_weights_up_to_the_layer_only(loaded_factory, txt_corpus):
    loaded, points = loaded_factory("llama")
    base = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    with torch.no_grad():
        points.blocks[3].mlp.up_proj.weight.mul_(2.0)  # after layer 1: its keys are unchanged
    assert layer_stats(loaded, points, [1], spec_for(txt_corpus))[1].cached
    with torch.no_grad():
        points.blocks[0].mlp.up_proj.weight.mul_(2.0)  # before layer 1: other keys
    changed = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    assert not changed.cached and changed.path != base.path
    assert not torch.allclose(changed.moment, base.moment)


@pytest.mark.parametrize(
    "changes", [{"n_tokens": 300}, {"seq_len": 32}, {"seed": 1}], ids=["tokens", "seq_len", "seed"]
)
def test_key_covers_the_sample(loaded_factory, txt_corpus, changes):
    loaded, points = loaded_factory("llama")
    base = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    other = layer_stats(loaded, points, [1], spec_for(txt_corpus, **changes))[1]
    assert not other.cached and other.path != base.path


def test_key_covers_the_precision_and_float32_keeps_the_name_it_had(loaded_factory, txt_corpus):
    from nse_engine.stats.cache import FORMAT

    loaded, points = loaded_factory("llama")
    full = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    low = layer_stats(loaded, points, [1], spec_for(txt_corpus, precision="bfloat16"))[1]
    assert not low.cached and low.path != full.path
    assert layer_stats(loaded, points, [1], spec_for(txt_corpus, precision="bfloat16"))[1].cached
    # a float32 file is named by the fields it had before precision was one: caches made then stay valid
    key = StatsKey(fingerprint="f", layer=1, module="m", corpus="c", n_tokens=1, seq_len=2, seed=0, tokenization="t")
    digest = hashlib.sha256(json.dumps({"format": FORMAT, **{name: str(value) for name, value in [
        ("fingerprint", "f"), ("layer", 1), ("module", "m"), ("corpus", "c"), ("n_tokens", 1), ("seq_len", 2),
        ("seed", 0), ("tokenization", "t")]}}, sort_keys=True).encode()).hexdigest()
    assert key.path.name == f"layer001-{digest[:32]}.safetensors"


def test_key_covers_corpus_content_and_bos(loaded_factory, txt_corpus, tmp_path):
    loaded, points = loaded_factory("llama")
    base = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    edited = tmp_path / "edited.txt"
    edited.write_text(txt_corpus.read_text() + "\n\nOne more paragraph.", encoding="utf-8")
    assert layer_stats(loaded, points, [1], spec_for(edited))[1].path != base.path
    loaded.tokenizer.bos_token = None  # no BOS to prepend: other sequences, other key
    assert layer_stats(loaded, points, [1], spec_for(txt_corpus))[1].path != base.path


def test_truncated_file_is_recomputed(loaded_factory, txt_corpus, caplog):
    loaded, points = loaded_factory("llama")
    base = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    data = base.path.read_bytes()
    base.path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        again = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    assert not again.cached and "unreadable" in caplog.text
    assert torch.equal(again.moment, base.moment)
    assert base.path.stat().st_size == len(data)


def test_damaged_values_fail_the_checksum(loaded_factory, txt_corpus, caplog):
    loaded, points = loaded_factory("llama")
    base = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    data = bytearray(base.path.read_bytes())
    data[-3] ^= 0xFF  # inside the tensor: the file still parses
    base.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = layer_stats(loaded, points, [1], spec_for(txt_corpus))[1]
    assert not again.cached and "checksum" in caplog.text
    assert torch.equal(again.moment, base.moment)


def test_file_of_another_model_is_not_used(loaded_factory, txt_corpus, caplog):
    model_a, points_a = loaded_factory("llama", seed=0)
    model_b, points_b = loaded_factory("llama", seed=1)
    a = layer_stats(model_a, points_a, [1], spec_for(txt_corpus))[1]
    b = layer_stats(model_b, points_b, [1], spec_for(txt_corpus))[1]
    assert a.path != b.path
    shutil.copyfile(a.path, b.path)  # B's cache slot now holds A's statistics
    with caplog.at_level(logging.WARNING):
        again = layer_stats(model_b, points_b, [1], spec_for(txt_corpus))[1]
    assert not again.cached and "fingerprint" in caplog.text
    assert torch.equal(again.moment, b.moment)
    assert not torch.allclose(again.moment, a.moment)


def prepared_with_each(setting, values, recorded_as):
    """A tiny project prepared once per value of `setting`: its last edited layer's C per value, and
    what every statistics cache file records (`recorded_as` reads a file's metadata), sorted."""
    from safetensors import safe_open

    from nse_engine.editing.session import EditingSession
    from nse_engine.paths import cache_dir
    from nse_engine.progress import JobControl
    from tiny import tiny_hparams, tiny_loaded

    loaded = tiny_loaded("llama")
    moments = {}
    for value in values:
        session = EditingSession(loaded, tiny_hparams(**{setting: value}))
        session.prepare(JobControl())
        moments[value] = session.second_moments[session.layers[-1]]
    recorded = []
    for path in (cache_dir() / "stats").glob("*.safetensors"):
        with safe_open(path, "pt") as f:
            recorded.append(recorded_as(f.metadata()))
    return moments, sorted(recorded)


def test_a_projects_statistics_sample_is_a_setting_each_size_cached_apart():
    """`stats_tokens` picks the sample C is estimated from; a smaller sample is its own cache entry,
    never mistaken for (or overwriting) the full one."""
    moments, recorded = prepared_with_each("stats_tokens", (512, 1024), lambda meta: int(meta["n_tokens"]))
    assert recorded == [512] * 2 + [1024] * 2  # two edited layers, each size apart
    assert not torch.equal(moments[512], moments[1024])


def test_a_projects_statistics_precision_is_a_setting_recorded_in_the_cache():
    """`stats_precision` (derived: bf16 where the device multiplies it fast) picks the pass's products;
    the file records it, and the two precisions never share a file."""
    moments, recorded = prepared_with_each("stats_precision", ("float32", "bfloat16"),
                                           lambda meta: meta.get("precision", "float32"))
    assert recorded == ["bfloat16"] * 2 + ["float32"] * 2  # two edited layers, each precision apart
    assert not torch.equal(moments["float32"], moments["bfloat16"])
    assert torch.allclose(moments["float32"], moments["bfloat16"], rtol=0.05, atol=0.02 * moments["float32"].abs().max())


@pytest.mark.parametrize("speedup, chosen", [(8.0, "bfloat16"), (2.9, "float32"), (0.5, "float32"), (0.0, "float32")])
def test_derived_statistics_take_bf16_only_where_the_device_multiplies_it_fast(monkeypatch, speedup, chosen):
    """The device's measured bf16 speed-up (monkeypatched: this machine has one speed) decides, and
    the derived settings' note says what was measured."""
    from nse_engine.editing import derive

    assert derive.bf16_speedup(torch.device("cpu")) >= 0  # the real measurement runs here
    monkeypatch.setattr(derive, "bf16_speedup", lambda device: speedup)
    assert derive.stats_precision_for(torch.device("cpu")) == (chosen, speedup)
    note = derive._precision_note(chosen, speedup, torch.device("cpu"))
    assert note.startswith(chosen)
    assert ("fail" in note) == (speedup == 0)
