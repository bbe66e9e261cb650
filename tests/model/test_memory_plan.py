"""The memory plan, from the published configs of the models users edit, on the machines they have."""

from functools import cache

import pytest
import torch
from transformers import AutoModelForCausalLM

from nse_engine.editing.hparams import default_layers
from nse_engine.editing.memory_estimate import GIB, EditingLoad
from nse_engine.editing.memory_plan import plan_memory
from nse_engine.errors import InsufficientMemoryError
from nse_engine.model.devices import Device
from nse_engine.model.placement import place_weights
from nse_engine.model.shape import model_shape
from real_configs import CONFIGS, PARAMETERS, real_config

GPU_24GB = (Device("cuda:0", 24 * GIB), Device("cpu", 64 * GIB))
GPU_80GB = (Device("cuda:0", 80 * GIB), Device("cpu", 128 * GIB))
GPU_2X80GB = (Device("cuda:0", 80 * GIB), Device("cuda:1", 80 * GIB), Device("cpu", 256 * GIB))
THIS_CPU = (Device("cpu", 24 * GIB),)
SEVEN_TO_EIGHT_B = ("Llama-3-8B", "Qwen2.5-7B", "Mistral-7B")


@cache
def shape_and_layers(name: str):
    """The model's shape and the layers NSE edits by default, from its config on the meta device."""
    config = real_config(name)
    with torch.device("meta"):
        layers = default_layers(AutoModelForCausalLM.from_config(config), config.num_hidden_layers)
    return model_shape(config), layers


def plan(name: str, machine, batch_size: int = 10):
    shape, layers = shape_and_layers(name)
    dtype = torch.float32 if machine == THIS_CPU else torch.bfloat16
    return plan_memory(shape, dtype, machine, EditingLoad(layers, batch_size=batch_size))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shape_from_config_alone_matches_the_published_parameter_count(name):
    assert model_shape(real_config(name)).n_params == PARAMETERS[name]


def test_llama_3_8b_state_is_counted_as_the_engine_holds_it():
    p = plan("Llama-3-8B", GPU_80GB)
    assert p.load.layers == (4, 5, 6, 7, 8)  # the paper's preset
    by_what = {(i.what, i.device): i.bytes for i in p.items}
    assert by_what[("weights", "cuda:0")] == PARAMETERS["Llama-3-8B"] * 2
    assert by_what[("C and Kp (float64)", "cuda:0")] == 2 * 5 * 14336**2 * 8  # d_ff² each, per layer
    assert by_what[("accumulated updates S (float64)", "cpu")] == 5 * 4096 * 14336 * 8
    assert by_what[("partial sums kᵀk (float32)", "cuda:0")] == 5 * 14336**2 * 4


@pytest.mark.parametrize("name", SEVEN_TO_EIGHT_B)
def test_7b_on_a_24gb_gpu_fits_by_keeping_c_and_kp_on_the_cpu(name):
    p = plan(name, GPU_24GB)
    assert p.fits, p.lines()
    assert set(p.device_map.values()) == {"cuda:0"}
    assert p.placement.state_device == "cpu"
    assert p.tried  # C and Kp on the GPU beside the weights was tried first and did not fit
    p.require_fit()


@pytest.mark.parametrize("name", SEVEN_TO_EIGHT_B)
def test_7b_on_a_24gb_gpu_refuses_100_facts_per_round_and_says_what_to_do(name):
    p = plan(name, GPU_24GB, batch_size=100)
    assert not p.fits
    assert "cuda:0" in p.shortfalls
    with pytest.raises(InsufficientMemoryError, match=r"cuda:0 needs [\d.]+ GiB of 24.0.*--batch-size"):
        p.require_fit()


@pytest.mark.parametrize("name", SEVEN_TO_EIGHT_B)
@pytest.mark.parametrize("batch_size", [10, 100])
def test_7b_on_an_80gb_gpu_keeps_everything_on_the_gpu_in_float64(name, batch_size):
    p = plan(name, GPU_80GB, batch_size)
    assert p.fits, p.lines()
    assert p.placement.state_device == "cuda:0" and p.placement.state_dtype == torch.float64
    assert not p.tried


@pytest.mark.parametrize("name", SEVEN_TO_EIGHT_B)
def test_7b_on_two_80gb_gpus_uses_one(name):
    p = plan(name, GPU_2X80GB)
    assert p.fits
    assert set(p.device_map.values()) == {"cuda:0"}
    assert "cuda:1: unused" in "\n".join(p.lines())


def test_70b_is_spread_over_two_80gb_gpus_with_its_editing_state_on_the_cpu():
    p = plan("Llama-3-70B", GPU_2X80GB)
    assert p.fits, p.lines()
    assert set(p.device_map.values()) == {"cuda:0", "cuda:1"}
    assert p.placement.state_device == "cpu" and p.placement.state_dtype == torch.float32
    edited = {p.device_map[f"model.layers.{l}"] for l in p.load.layers}
    assert edited == {"cuda:0"}
    assert all(peak <= 80 * GIB for name, peak in p.peaks.items() if name != "cpu")


@pytest.mark.parametrize("machine", [GPU_24GB, GPU_80GB], ids=["24GB", "80GB"])
def test_70b_on_one_gpu_is_refused(machine):
    p = plan("Llama-3-70B", machine)
    assert not p.fits
    with pytest.raises(InsufficientMemoryError, match="LlamaForCausalLM \\(70.55 B parameters\\) cannot be edited here"):
        p.require_fit()


@pytest.mark.parametrize("name", [*SEVEN_TO_EIGHT_B, "Llama-3-70B"])
def test_this_cpu_refuses_7b_and_larger(name):
    p = plan(name, THIS_CPU)
    assert not p.fits
    assert p.by_phase("cpu")["resident"] > 24 * GIB  # the float32 weights alone


@pytest.mark.parametrize("machine", [THIS_CPU, GPU_24GB, GPU_80GB, GPU_2X80GB], ids=["cpu", "24GB", "80GB", "2x80GB"])
def test_gemma_3_270m_fits_everywhere_with_its_state_beside_the_weights(machine):
    p = plan("Gemma-3-270M", machine)
    assert p.fits
    assert p.load.layers == (1, 2, 3, 4)
    assert not p.tried
    assert p.peaks[p.placement.state_device] < 5 * GIB


def test_gemma_vocabulary_dominates_target_states():
    p = plan("Gemma-3-270M", THIS_CPU)
    phase = {i.what: i.bytes for i in p.items if i.phase == "target states"}
    assert phase["log-softmax over the vocabulary"] > phase["key/value cache"]


def test_balanced_placement_keeps_forward_order_and_even_shares():
    shape, _ = shape_and_layers("Llama-3-70B")
    placed = place_weights(shape, GPU_2X80GB)
    order = list(placed.values())
    assert order == sorted(order)  # cuda:0 first, then cuda:1: one hand-over between GPUs
    share = {d: sum(shape.units[u] for u, dd in placed.items() if dd == d) for d in ("cuda:0", "cuda:1")}
    assert abs(share["cuda:0"] - share["cuda:1"]) <= max(shape.block_params) + shape.other_params
