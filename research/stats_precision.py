"""How far E[k kᵀ] moves when the statistics pass runs its matrix products in bfloat16, and how much faster.

On a CPU with bf16 matrix units (AMX) or a GPU, bf16 products run several times faster than float32.
This computes the default model's C for the edited layers 2..8 from the default 131,072 tokens three
ways, timed alone: float32 (the reference), bf16 forward with float32 kᵀk, and bf16 forward with
bf16 kᵀk (float32 sums between chunks). For each it records the relative Frobenius distance to the
float32 C and the whitened one (the error seen in C's own eigenbasis, which weighs the low-variance
directions the solve inverts as much as the dominant ones), beside the sampling change between
65,536 and 131,072 tokens for scale.

    python -m research.stats_precision
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from nse_engine.editing.derive import STATS_TOKENS
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.progress import silent
from nse_engine.provenance import write_result
from nse_engine.stats.corpus import load_corpus, token_sequences
from nse_engine.stats.second_moment import PHASE, key_product_sums
from research.stats_convergence import whitened_change

RESULTS = Path(__file__).parent / "results" / "stats_precision.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=STATS_TOKENS)
    parser.add_argument("--layers", default="2,3,4,5,6,7,8")
    args = parser.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    loaded = load_model("default")
    points = find_edit_points(loaded.model)
    corpus = load_corpus("default")
    sequences = token_sequences(corpus, loaded.tokenizer, args.tokens, 128, 0, silent(), PHASE)
    half = token_sequences(corpus, loaded.tokenizer, args.tokens // 2, 128, 0, silent(), PHASE)
    moments: dict[str, dict[int, torch.Tensor]] = {}
    seconds: dict[str, float] = {}
    for name in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        sums = key_product_sums(loaded.model, points, layers, sequences, 16, silent(), precision=name)
        seconds[name] = time.perf_counter() - t0
        moments[name] = {layer: s / args.tokens for layer, s in sums.items()}
    sums = key_product_sums(loaded.model, points, layers, half, 16, silent())
    moments["float32_half"] = {layer: s / (args.tokens // 2) for layer, s in sums.items()}
    ref = moments["float32"]
    rows = {}
    for name in ("bfloat16", "float32_half"):
        rows[name] = {
            str(layer): {
                "relative_frobenius": float((moments[name][layer] - ref[layer]).norm() / ref[layer].norm()),
                "whitened": whitened_change(moments[name][layer], ref[layer]),
            }
            for layer in layers
        }
    result = {"tokens": args.tokens, "layers": layers, "seconds": seconds, "distance_to_float32": rows,
              "threads": torch.get_num_threads()}
    write_result(RESULTS, result)
    print(result)


if __name__ == "__main__":
    main()
