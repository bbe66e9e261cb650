"""Edit points are found by structure for every supported family, with the right shapes."""

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertLMHeadModel, MixtralConfig, MixtralForCausalLM

from nse_engine.errors import UnsupportedArchitectureError
from nse_engine.model.architecture import find_edit_points
from tiny import TINY_CONFIGS, make_model, make_tokenizer

EXPECTED = {
    "gpt2": ("transformer.h", "mlp.c_proj", True, 80, "transformer.ln_f"),
    "gptj": ("transformer.h", "mlp.fc_out", False, 80, "transformer.ln_f"),
    "gpt_neox": ("gpt_neox.layers", "mlp.dense_4h_to_h", False, 80, "gpt_neox.final_layer_norm"),
    "llama": ("model.layers", "mlp.down_proj", False, 72, "model.norm"),
    "mistral": ("model.layers", "mlp.down_proj", False, 72, "model.norm"),
    "qwen2": ("model.layers", "mlp.down_proj", False, 72, "model.norm"),
    "smollm": ("model.layers", "mlp.down_proj", False, 72, "model.norm"),
    "gemma3": ("model.layers", "mlp.down_proj", False, 72, "model.norm"),
}


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
def test_edit_points_by_shape(kind):
    model = make_model(kind, make_tokenizer())
    points = find_edit_points(model)
    blocks_path, out_path, transposed, d_ff, norm_path = EXPECTED[kind]
    assert points.n_layers == 4
    assert points.blocks_path == blocks_path
    assert points.mlp_out_path == out_path
    assert points.transposed is transposed
    assert points.d_ff == d_ff
    assert points.hidden_size == 32
    assert points.final_norm_path == norm_path
    assert points.mlp_output_norm_path == ("post_feedforward_layernorm" if kind == "gemma3" else None)
    for layer in range(points.n_layers):
        assert tuple(points.weight_view(layer).shape) == (32, d_ff)
        # the view shares storage with the parameter: writes through it change the model
        assert points.weight_view(layer).data_ptr() == points.weight(layer).data_ptr()
    assert points.lm_head.weight.shape[1] == 32
    assert points.weight_name(1) in dict(model.named_parameters())


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
def test_weight_view_is_the_map_applied_to_keys(kind):
    """W k through the view equals what the projection module computes (bias removed)."""
    model = make_model(kind, make_tokenizer())
    points = find_edit_points(model)
    module = points.mlp_out(2)
    key = torch.randn(3, points.d_ff)
    bias = module.bias if getattr(module, "bias", None) is not None else 0
    assert torch.allclose(module(key) - bias, key @ points.weight_view(2).T, atol=1e-5)


def test_encoder_model_is_rejected_with_its_name():
    model = BertLMHeadModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=32, is_decoder=True))
    # BERT's FFN output lives in `output.dense` with no MLP parent, which is still found by shape;
    # what matters for users is that unsupported structures name the architecture.
    points = find_edit_points(model)
    assert points.architecture == "BertLMHeadModel"


def test_mixture_of_experts_is_refused_with_reason():
    config = MixtralConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, num_local_experts=2)
    config.architectures = ["MixtralForCausalLM"]
    with pytest.raises(UnsupportedArchitectureError, match="MixtralForCausalLM.*mixture-of-experts"):
        find_edit_points(MixtralForCausalLM(config))


def test_model_without_blocks_is_refused():
    model = make_model("llama", make_tokenizer())
    model.model.layers = nn.Sequential(*model.model.layers)  # not a ModuleList any more
    with pytest.raises(UnsupportedArchitectureError, match="LlamaForCausalLM.*no list of transformer blocks"):
        find_edit_points(model)
