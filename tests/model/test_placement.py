"""Models spread over devices: the balanced placement, a tiny model split where accelerate allows
it on a CPU machine (CPU and disk), edits written where the weights live, offloaded layers refused."""

import pytest
import torch

from nse_engine.editing.memory_estimate import GIB
from nse_engine.editing.session import EditingSession
from nse_engine.errors import InsufficientMemoryError, ModelLoadError
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model, read_config
from nse_engine.model.devices import Device
from nse_engine.model.placement import offloaded_blocks, place_weights, require_editable
from nse_engine.model.shape import model_shape
from tiny import save_model, tiny_hparams

FACTS = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar"),
]
TWO_GPUS = (Device("cuda:0", 8 * GIB), Device("cuda:1", 8 * GIB), Device("cpu", 8 * GIB))


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return save_model("llama", tmp_path_factory.mktemp("models") / "tiny-llama")


def logits(loaded, text="The capital of France is"):
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"].to(loaded.device)
    with torch.no_grad():
        return loaded.model(input_ids=ids).logits.float().cpu()


def test_balanced_map_over_two_gpus_covers_every_tensor_in_forward_order(tiny_llama):
    shape = model_shape(read_config(tiny_llama))
    placed = place_weights(shape, TWO_GPUS)
    assert list(placed) == list(shape.units)  # every parameter's and buffer's module, once
    assert list(placed.values()) == sorted(placed.values())
    assert placed["model.embed_tokens"] == "cuda:0" and placed["lm_head"] == "cuda:1"
    assert {placed[f"model.layers.{i}"] for i in range(4)} == {"cuda:0", "cuda:1"}


def test_a_model_split_by_the_balanced_map_computes_what_the_whole_model_does(tiny_llama):
    """The two GPUs of the balanced map played by the CPU and the disk, the split accelerate
    allows on a machine without GPUs."""
    whole = load_model(tiny_llama, device="cpu")
    stand_in = {"cuda:0": "cpu", "cuda:1": "disk"}
    balanced = place_weights(model_shape(read_config(tiny_llama)), TWO_GPUS)
    split = load_model(tiny_llama, device="cpu", device_map={unit: stand_in[d] for unit, d in balanced.items()})
    assert set(split.model.hf_device_map.values()) == {"cpu", "disk"}
    assert torch.allclose(logits(whole), logits(split), atol=1e-5)


@pytest.fixture
def upper_block_on_disk(tiny_llama):
    """Block 3 offloaded to disk, as device_map="auto" does when the GPUs are full."""
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu"}
    device_map |= {f"model.layers.{i}": "cpu" for i in range(3)} | {"model.layers.3": "disk"}
    return load_model(tiny_llama, device="cpu", device_map=device_map)


def test_offloaded_blocks_are_found(upper_block_on_disk):
    points = find_edit_points(upper_block_on_disk.model)
    assert offloaded_blocks(upper_block_on_disk.model, points) == {3: "disk"}
    require_editable(upper_block_on_disk.model, points, (1, 2))


def test_editing_an_offloaded_layer_is_refused_with_how_to_fix_it(upper_block_on_disk):
    points = find_edit_points(upper_block_on_disk.model)
    with pytest.raises(InsufficientMemoryError, match=r"edited layers 3 were offloaded to disk.*--device-map balanced"):
        require_editable(upper_block_on_disk.model, points, (2, 3))


def test_edits_below_an_offloaded_block_are_written_where_the_weights_live(tiny_llama, upper_block_on_disk):
    loaded = upper_block_on_disk
    session = EditingSession(loaded, tiny_hparams())
    before = {l: session.points.weight(l).detach().clone() for l in session.layers}
    result = session.apply_round(FACTS)
    assert all(o.applied for o in result.outcomes)
    for layer in session.layers:
        weight = session.points.weight(layer)
        assert weight.device == before[layer].device
        assert not torch.equal(weight, before[layer])
    assert all(o.distance_after < o.distance_before for o in result.outcomes)


def test_balanced_needs_gpus():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA GPUs")
    with pytest.raises(ModelLoadError, match="this machine has 0 CUDA GPU"):
        from nse_engine.model.loading import resolve_device_map

        resolve_device_map("balanced:0,1", None, torch.bfloat16)


@pytest.mark.parametrize("device_map", ["everywhere", "balanced:a,b"])
def test_unknown_device_map_is_a_plain_error(tiny_llama, device_map):
    with pytest.raises(ModelLoadError, match="--device-map"):
        load_model(tiny_llama, device="cpu", device_map=device_map)
