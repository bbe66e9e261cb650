"""C = E[k kᵀ] of the keys of each edited MLP output projection over general text, cached on disk.

NSE (like MEMIT) keeps an edit from disturbing what a layer already does by weighting its
least-squares update with C, where k (d_ff,) is the input of the MLP output projection. C is
estimated once per model, layer and corpus from original weights, streamed in float64.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nse_engine.errors import NseError
from nse_engine.model.architecture import EditPoints
from nse_engine.model.devices import dtype_name
from nse_engine.model.fingerprint import prefix_fingerprint
from nse_engine.model.hooks import StopForward, removing_hooks, run_until_stopped
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent
from nse_engine.stats import cache
from nse_engine.stats.corpus import DEFAULT_CORPUS, load_corpus, token_sequences, tokenization_tag
from nse_engine.stats.precision import STATS_PRECISIONS

log = logging.getLogger(__name__)

PHASE = "computing statistics"
_FLUSH_ROWS = 32_768  # key rows summed in float32 on the device before adding into the float64 total
_GEMM_ROWS = 4_096  # rows per float32 kᵀk product
_BF16_GEMM_ROWS = 1_024  # rows per bf16 kᵀk product: each sum is rounded to bf16 once, then added in float32


@dataclass(frozen=True)
class StatsSpec:
    """Which text the statistics are estimated from. Every field but batch_size is part of the cache key."""

    corpus: str = DEFAULT_CORPUS  # "wikipedia-vital" (bundled) or a .txt / .jsonl file
    n_tokens: int = 524_288  # token positions, BOS included; C moves ~5% from half as many (benchmarks/stats_convergence.py)
    seq_len: int = 128  # positions per sequence, BOS included
    batch_size: int = 16  # sequences per forward pass: speed and memory only
    seed: int = 0  # order in which documents are drawn
    precision: str = "float32"  # the pass's matrix products: one of STATS_PRECISIONS


@dataclass
class LayerStats:
    """One layer's second moment and how it was obtained."""

    layer: int
    moment: torch.Tensor  # (d_ff, d_ff) float64 CPU: E[k kᵀ]
    tokens: int
    seconds: float  # duration of the pass that computed it (shared by the layers of that pass)
    path: Path
    cached: bool  # loaded from `path` rather than computed now

    @property
    def trace(self) -> float:
        """E[‖k‖²]: a quick sanity number to compare runs."""
        return float(self.moment.diagonal().sum())


def layer_stats(
    loaded: LoadedModel,
    points: EditPoints,
    layers: list[int],
    spec: StatsSpec | None = None,
    control: JobControl | None = None,
) -> dict[int, LayerStats]:
    """Each layer's E[k kᵀ] ((d_ff, d_ff) float64 CPU) from the cache, the missing ones computed in
    one pass over the corpus; call only on original (unedited) weights."""
    spec = spec or StatsSpec()
    control = control or silent()
    layers = sorted(set(layers))
    bad = [layer for layer in layers if not 0 <= layer < points.n_layers]
    if bad:
        raise NseError(f"Layers {bad} do not exist; {loaded.name} has layers 0..{points.n_layers - 1}.")
    if not layers:
        raise NseError("Statistics need at least one layer.")
    if spec.n_tokens < 1 or spec.seq_len < 2 or spec.batch_size < 1:
        raise NseError(f"Statistics need n_tokens ≥ 1, seq_len ≥ 2 and batch_size ≥ 1, not {spec}.")
    if spec.precision not in STATS_PRECISIONS:
        raise NseError(f"Statistics precision must be one of {', '.join(STATS_PRECISIONS)}, not {spec.precision!r}.")
    corpus = load_corpus(spec.corpus)
    tokenization = tokenization_tag(loaded.tokenizer)
    keys = {
        layer: cache.StatsKey(
            fingerprint=prefix_fingerprint(loaded.model, points, layer),
            layer=layer,
            module=points.weight_name(layer).removesuffix(".weight"),
            corpus=corpus.identity,
            n_tokens=spec.n_tokens,
            seq_len=spec.seq_len,
            seed=spec.seed,
            tokenization=tokenization,
            precision=spec.precision,
        )
        for layer in layers
    }
    result: dict[int, LayerStats] = {}
    for layer, key in keys.items():
        hit = cache.load(key, points.d_ff)
        if hit is not None:
            moment, meta = hit
            result[layer] = LayerStats(layer, moment, int(meta["tokens"]), float(meta["seconds"]), key.path, True)
    missing = [layer for layer in layers if layer not in result]
    if not missing:
        return result

    started = time.monotonic()
    with control.sharing():  # its pause points leave the model untouched: other jobs may run there
        sequences = token_sequences(corpus, loaded.tokenizer, spec.n_tokens, spec.seq_len, spec.seed, control, PHASE)
        sums = key_product_sums(loaded.model, points, missing, sequences, spec.batch_size, control, spec.precision)
    seconds = time.monotonic() - started
    for layer in missing:
        moment = sums[layer] / spec.n_tokens  # (d_ff, d_ff) float64
        info = {
            "tokens": str(spec.n_tokens),
            "seconds": f"{seconds:.3f}",
            "corpus_name": corpus.name,
            "model_dtype": dtype_name(loaded.dtype),
            "device": str(loaded.device),
        }
        path = cache.save(keys[layer], moment, info)
        result[layer] = LayerStats(layer, moment, spec.n_tokens, seconds, path, False)
        log.info("layer %d: E[kkᵀ] from %d tokens in %.1f s, trace %.4g -> %s",
                 layer, spec.n_tokens, seconds, result[layer].trace, path)
    return {layer: result[layer] for layer in layers}


@torch.no_grad()
def key_product_sums(
    model: nn.Module,
    points: EditPoints,
    layers: list[int],
    sequences: list[list[int]],
    batch_size: int,
    control: JobControl,
    precision: str = "float32",
) -> dict[int, torch.Tensor]:
    """Σ k kᵀ over every position of `sequences`, per layer, as (d_ff, d_ff) float64 CPU tensors.

    One forward pass per batch through blocks 0..max(layers) only: a pre-hook on each projection
    takes its input (the keys) at the real positions, adds kᵀk in float32 into a per-layer partial
    sum on the device, and the partial sums are folded into float64 totals every _FLUSH_ROWS rows.
    The hooks are on during a batch's pass only, so at the pause point between batches other work
    (a chat reply) uses the model as it is, and its passes add nothing to the sums.

    precision "bfloat16" runs each kᵀk of _BF16_GEMM_ROWS rows in bf16 (float32 accumulation inside
    the product, rounded once) and, for float32 weights, the forward pass under bf16 autocast (weights
    already in half precision run as they are): faster on bf16 matrix units (AMX, GPUs), C within
    0.6 % of float32's on SmolLM2 (precision.py).
    """
    device = points.embeddings.weight.device  # where the token ids go (a sharded model may spread its blocks)
    last = max(layers)
    low = precision == "bfloat16"
    autocast_forward = low and points.weight(last).dtype == torch.float32
    totals = {layer: torch.zeros(points.d_ff, points.d_ff, dtype=torch.float64) for layer in layers}
    partial = {
        layer: torch.zeros(points.d_ff, points.d_ff, dtype=torch.float32, device=points.weight(layer).device)
        for layer in layers
    }
    real: torch.Tensor | None = None  # (batch, longest) bool: positions that are not padding
    seen: set[int] = set()

    def hook_for(layer: int):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]  # (batch, longest, d_ff)
            assert x.shape[:2] == real.shape and x.shape[-1] == points.d_ff, (
                f"layer {layer}: projection input {tuple(x.shape)} does not match tokens {tuple(real.shape)}"
            )
            if low:
                keys = x[real.to(x.device)].to(torch.bfloat16)  # (tokens, d_ff)
                for chunk in keys.split(_BF16_GEMM_ROWS):
                    partial[layer] += chunk.T @ chunk  # (d_ff, d_ff) bf16 product, summed in float32
            else:
                keys = x[real.to(x.device)].float()  # (tokens, d_ff)
                for chunk in keys.split(_GEMM_ROWS):
                    partial[layer].addmm_(chunk.T, chunk)  # (d_ff, d_ff) += (d_ff, rows) @ (rows, d_ff)
            seen.add(layer)
            if layer == last:  # later blocks and the LM head never run
                raise StopForward

        return hook

    def flush() -> None:
        for layer in layers:
            totals[layer] += partial[layer].to("cpu", torch.float64)
            partial[layer].zero_()

    # Sequences of similar length share a batch, so there is little padding to compute.
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    total = sum(len(s) for s in sequences)
    pad_id = 0  # any valid id: padded positions are masked in attention and dropped from the sums
    was_training = model.training
    try:
        done = pending = 0
        for start in range(0, len(order), batch_size):
            batch = [sequences[i] for i in order[start : start + batch_size]]
            longest = max(len(s) for s in batch)
            ids = torch.tensor([s + [pad_id] * (longest - len(s)) for s in batch], device=device)  # (batch, longest)
            mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in batch], device=device)
            real = mask.bool()
            seen.clear()
            model.eval()
            handles = [points.mlp_out(layer).register_forward_pre_hook(hook_for(layer)) for layer in layers]
            forward = torch.autocast(device.type, torch.bfloat16) if autocast_forward else nullcontext()
            with removing_hooks(handles), forward:
                run_until_stopped(lambda: model(input_ids=ids, attention_mask=mask, use_cache=False))
            assert seen == set(layers), f"the forward pass never reached the projections of layers {set(layers) - seen}"
            n = sum(len(s) for s in batch)
            done += n
            pending += n
            if pending >= _FLUSH_ROWS:
                flush()
                pending = 0
            control.report(PHASE, done, total, f"{done:,}/{total:,} tokens")
            control.pause_point()
        flush()
    finally:
        model.train(was_training)
    return totals
