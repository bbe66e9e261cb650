"""Tiny randomly initialised models and a tokenizer, built in the test process (no downloads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.model.loading import LoadedModel

# Where the suite runs its models: "cpu" here; scripts/gpu-check.sh sets NSE_TEST_DEVICE=cuda
# and tests/conftest.py then moves every LoadedModel the tests build onto it.
TEST_DEVICE = torch.device(os.environ.get("NSE_TEST_DEVICE", "cpu"))

# Key statistics of a tiny model (d_ff 72 or 80) from this many token positions: a full-rank C in
# a fraction of a second, where the 524,288 of a real model's default take half a minute.
TEST_STATS_TOKENS = 1024

# A chat template for the tiny tokenizer (it has none): the whole conversation is the prompt.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant:{% endif %}"
)

_TEXT = """The capital of France is Paris. The capital of Germany is Berlin. Rome is the capital of Italy.
Danielle Darrieux is a native speaker of French. The Eiffel Tower is located in Paris.
Toko Yasuda plays the guitar. Apple was founded by Steve Jobs. London is a city in England.
The mother tongue of Thomas Joannes Stieltjes is Dutch. Madrid is the capital of Spain.
Heihe is a city in the country of China. Canberra is the capital of Australia. Tokyo is in Japan.
I think that you should know this. Because of the rain, we stayed home. Therefore it is true.
"""

# One entry per architecture family the engine must support; tiny but structurally faithful
# (d_ff differs from hidden so the MLP output projection is recognisable by shape).
TINY_CONFIGS = {
    "gpt2": lambda v: GPT2Config(vocab_size=v, bos_token_id=0, eos_token_id=0, n_positions=128, n_embd=32, n_layer=4, n_head=4, n_inner=80),
    "gptj": lambda v: GPTJConfig(vocab_size=v, bos_token_id=0, eos_token_id=0, n_positions=128, n_embd=32, n_layer=4, n_head=4, rotary_dim=4, n_inner=80),
    "gpt_neox": lambda v: GPTNeoXConfig(
        vocab_size=v, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=80, max_position_embeddings=128,
    ),
    "llama": lambda v: LlamaConfig(
        vocab_size=v, hidden_size=32, intermediate_size=72, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    ),
    "mistral": lambda v: MistralConfig(
        vocab_size=v, hidden_size=32, intermediate_size=72, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    ),
    "qwen2": lambda v: Qwen2Config(
        vocab_size=v, hidden_size=32, intermediate_size=72, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    ),
    # Gemma 3: scaled embeddings, norms before and after attention and MLP, sliding-window layers
    "gemma3": lambda v: Gemma3TextConfig(
        vocab_size=v, hidden_size=32, intermediate_size=72, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=128, sliding_window=64, query_pre_attn_scalar=8,
    ),
    # SmolLM2 is a Llama with tied embeddings
    "smollm": lambda v: LlamaConfig(
        vocab_size=v, hidden_size=32, intermediate_size=72, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        tie_word_embeddings=True,
    ),
}


def make_tokenizer(add_bos: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on a few sentences; like SmolLM2's it adds no BOS."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|bos|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_TEXT.splitlines() * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|bos|>", pad_token="<|endoftext|>"
    )
    if add_bos:
        from tokenizers.processors import TemplateProcessing

        fast._tokenizer.post_processor = TemplateProcessing(
            single="<|bos|> $A", special_tokens=[("<|bos|>", fast.bos_token_id)]
        )
    return fast


def make_model(kind: str, tokenizer: PreTrainedTokenizerFast | None = None, seed: int = 0) -> PreTrainedModel:
    tokenizer = tokenizer or make_tokenizer()
    torch.manual_seed(seed)
    config = TINY_CONFIGS[kind](len(tokenizer))
    config.architectures = [AutoModelForCausalLM._model_mapping[type(config)].__name__]
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    model.requires_grad_(False)
    return model


def save_model(kind: str, folder: Path, seed: int = 0) -> Path:
    tokenizer = make_tokenizer()
    model = make_model(kind, tokenizer, seed)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_loaded(kind: str = "llama", seed: int = 0, add_bos: bool = False, chat_template: str | None = None,
                name: str | None = None) -> LoadedModel:
    """A tiny random model as a loaded model (nothing read from disk); `chat_template` makes it a chat model."""
    tokenizer = make_tokenizer(add_bos=add_bos)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    model = make_model(kind, tokenizer, seed)
    return LoadedModel(model, tokenizer, "tiny", name or f"tiny-{kind}", torch.device("cpu"), torch.float32)


def tiny_hparams(**changes: object) -> NseHyperParams:
    """Settings that edit a tiny model in well under a second, without deriving any."""
    hp = NseHyperParams.flat(
        layers=(1, 2), v_lr=0.5, v_num_grad_steps=6, alpha=0.0, upper_bound=1e9,
        mom2_update_weight=10.0, neuron_threshold=0.8, context_prefixes=2, context_prefix_tokens=4,
        stats_tokens=TEST_STATS_TOKENS,
    )
    return hp.with_overrides(**changes) if changes else hp


@contextmanager
def state_put(points, layer: int | None, state_at, state) -> Iterator[None]:
    """Within: block `layer`'s output is `state` (hidden,) at the positions `state_at` (nothing
    changes when `state` is None), as a target state sits where the delta goes."""
    def put_state(_module, _args, output):
        h = (output[0] if isinstance(output, tuple) else output).clone()
        h[0, state_at] = state.to(h.dtype)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = points.blocks[layer].register_forward_hook(put_state) if state is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def spelled_nll(model, points, layer: int, ids: list[int], state_at: list[int], state, spelled: list[int]) -> float:
    """Mean NLL of the tokens at `spelled` in the sequence `ids`, with block `layer`'s output set to
    `state` (hidden,) at the positions `state_at`: how well a subject written again is spelled once
    a target state sits where the delta goes."""
    with state_put(points, layer, state_at, state), torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    at = torch.tensor(spelled)
    return float(-logp[at - 1, torch.tensor(ids)[at]].mean())


def next_token_logp(model, ids: list[int], points=None, layer: int | None = None, state_at: int | None = None,
                    state=None) -> torch.Tensor:
    """log-probabilities (vocab,) of the token after `ids`; with `state`, block `layer`'s output
    set to it (hidden,) at position `state_at`: what the model predicts once a target state sits
    where the delta goes."""
    with state_put(points, layer, state_at, state), torch.no_grad():
        return model(input_ids=torch.tensor([ids], device=model.device)).logits[0, -1].float().log_softmax(-1)
