"""How the cost of editing grows with the model: randomly initialised Llama-shaped models of
SmolLM2-135M's, SmolLM2-360M's and Llama-3.2-1B's shapes, the same layers edited by relative
depth (hparams.relative_depth_layers), on this machine's CPU.

For each size: the statistics pass (seconds per 100k tokens, measured on fewer and scaled: its
cost is linear in the tokens), and for each batch size one round from a fresh session after its
statistics, recording seconds per edit by phase and the peak resident memory of the process
(each size and batch runs in its own process, with a fresh statistics cache). Random weights make every fact run all its
target-state steps and every editing pass (alpha 0): the cost of a hard round, not a typical one.
The projection to 8B fits time ∝ parameters^k per phase through the measured sizes.

    python -m benchmarks.cost_growth [--sizes 135m,360m,1b] [--batches 10,100] [--out FILE.json]
    python -m benchmarks.cost_growth --skip 1b:100 --steps 10   # what fits a 2-core session
    python -m benchmarks.cost_growth --sizes 1b --batches 100 --steps 10 --keep   # add one row to the file
    python -m benchmarks.cost_growth --sizes 135m --batches 10 --stats-tokens 2048 --steps 5   # smoke test
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_3_8B_PARAMETERS = 8_030_261_248
# The published shapes (config.json) of the models whose sizes are measured.
SHAPES = {
    "135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
             "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True, "rope_theta": 100000.0},
    "360m": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 15,
             "num_key_value_heads": 5, "vocab_size": 49152, "tie_word_embeddings": True, "rope_theta": 100000.0},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "tie_word_embeddings": True,
           "rope_theta": 500000.0},
}
_FIRST = ["Amara", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
_LAST = ["Okafor", "Lindqvist", "Moreau", "Petrov", "Sato", "Varga", "Quispe", "Haddad", "Nowak", "Brandt"]
_RELATIONS = [("{} was born in", ["Lisbon", "Oslo", "Cairo", "Lima", "Hanoi"]),
              ("The mother tongue of {} is", ["Finnish", "Swahili", "Tamil", "Basque", "Welsh"]),
              ("{} plays the", ["cello", "oboe", "harp", "tuba", "sitar"]),
              ("{} works as a", ["pilot", "baker", "chemist", "lawyer", "nurse"])]


def facts(n: int):
    """n distinct made-up facts (a random model knows none; only their shape and cost matter)."""
    from nse_engine.facts import EditRequest

    names = [f"{a} {b}" for a, b in itertools.product(_FIRST, _LAST)]
    out = []
    for i in range(n):
        prompt, objects = _RELATIONS[i % len(_RELATIONS)]
        out.append(EditRequest(names[i % len(names)], prompt, objects[(i // len(_RELATIONS)) % len(objects)]))
    return out


def build(size: str):
    """The random model of `size` with the built-in model's tokenizer, as a LoadedModel."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from nse_engine.model.loading import LoadedModel, load_model

    tokenizer = load_model("default", device="cpu").tokenizer
    config = LlamaConfig(**SHAPES[size], max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(model, tokenizer, f"random-{size}", f"random-{size}", torch.device("cpu"), torch.float32)


def hparams(n_layers: int, stats_tokens: int, steps: int):
    from nse_engine.editing.hparams import NseHyperParams, relative_depth_layers

    return NseHyperParams.flat(
        layers=relative_depth_layers(n_layers), v_lr=0.5, v_num_grad_steps=steps,
        alpha=0.0, upper_bound=1e12, mom2_update_weight=1e4, neuron_threshold=0.8, max_iterations=3,
        context_prefixes=5, stats_tokens=stats_tokens,
    )


def measure(size: str, batch: int, stats_tokens: int, steps: int) -> dict[str, object]:
    """In this process: the statistics pass, then one round of `batch` facts."""
    from nse_engine.editing.session import EditingSession
    from nse_engine.progress import silent
    from nse_engine.stats.second_moment import StatsSpec, layer_stats

    loaded = build(size)
    hp = hparams(loaded.model.config.num_hidden_layers, stats_tokens, steps)
    session = EditingSession(loaded, hp)
    stats = layer_stats(loaded, session.points, list(hp.layers), StatsSpec(n_tokens=stats_tokens))
    assert not any(s.cached for s in stats.values()), "the statistics must be computed, not read from a cache"
    stats_seconds = next(iter(stats.values())).seconds  # one pass over the corpus for every edited layer
    session.prepare(silent())  # context prefixes; the statistics now come from the cache
    result = session.apply_round(facts(batch))
    per_edit = {phase: seconds / batch for phase, seconds in result.seconds_by_phase.items()}
    return {
        "size": size,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "layers": list(hp.layers),
        "d_ff": session.points.d_ff,
        "batch_size": batch,
        "applied": len(result.applied),
        "editing_passes": result.editing_passes,
        "statistics_seconds_per_100k_tokens": round(stats_seconds * 100_000 / stats_tokens, 2),
        "seconds_per_edit_by_phase": {k: round(v, 4) for k, v in per_edit.items()},
        "seconds_per_edit": round(sum(per_edit.values()), 4),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),  # KiB on Linux
    }


def project(results: list[dict], batch: int) -> dict[str, float]:
    """Seconds per edit by phase at 8B, from a least-squares fit of log time on log parameters."""
    rows = [r for r in results if r["batch_size"] == batch]
    if len(rows) < 2:
        return {}
    x = [math.log(r["parameters"]) for r in rows]
    projected = {}
    for phase in rows[0]["seconds_per_edit_by_phase"]:
        y = [math.log(max(r["seconds_per_edit_by_phase"][phase], 1e-6)) for r in rows]
        mx, my = sum(x) / len(x), sum(y) / len(y)
        slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
        projected[phase] = round(math.exp(my + slope * (math.log(LLAMA_3_8B_PARAMETERS) - mx)), 2)
    return projected


def kept_rows(path: Path, stats_tokens: int, steps: int, redone: set[tuple[str, int]]) -> list[dict]:
    """The rows of an earlier result at `path` that stay comparable (same statistics tokens and
    target-state steps) and are not measured again; each keeps the provenance of its own run."""
    if not path.exists():
        return []
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if (earlier["stats_tokens"], earlier["target_state_steps"]) != (stats_tokens, steps):
        raise SystemExit(f"{path} was measured with {earlier['stats_tokens']} statistics tokens and "
                         f"{earlier['target_state_steps']} steps; run with those, or without --keep")
    return [row | {"provenance": row.get("provenance", earlier["provenance"])}
            for row in earlier["results"] if (row["size"], row["batch_size"]) not in redone]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="135m,360m,1b")
    parser.add_argument("--batches", default="10,100")
    parser.add_argument("--stats-tokens", type=int, default=16384, help="tokens of the measured statistics pass")
    parser.add_argument("--steps", type=int, default=25, help="target-state Adam steps (the paper: 20–25)")
    parser.add_argument("--skip", default="", help="size:batch pairs not to run, e.g. 1b:100")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cost_growth.json")
    parser.add_argument("--keep", action="store_true",
                        help="keep the rows of --out measured with the same statistics tokens and steps that this run does not redo")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, batch = args.child.split(":")
        print(json.dumps(measure(size, int(batch), args.stats_tokens, args.steps)))
        return
    from nse_engine.provenance import provenance, write_result

    sizes = args.sizes.split(",")
    unknown = set(sizes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown sizes {sorted(unknown)}; choose from {', '.join(SHAPES)}")
    batches = [int(b) for b in args.batches.split(",")]
    skipped = {tuple(pair.split(":")) for pair in args.skip.split(",") if pair}
    runs = [(size, batch) for size, batch in itertools.product(sizes, batches) if (size, str(batch)) not in skipped]
    kept = kept_rows(args.out, args.stats_tokens, args.steps, set(runs)) if args.keep else []
    results = []
    for size, batch in runs:
        with tempfile.TemporaryDirectory() as cache:  # statistics computed afresh, and timed
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.cost_growth", "--child", f"{size}:{batch}",
                 "--stats-tokens", str(args.stats_tokens), "--steps", str(args.steps)],
                cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ | {"NSE_CACHE_DIR": cache},
            )
        if done.returncode != 0:
            raise SystemExit(f"{size} at batch {batch} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1]) | {"provenance": provenance()}
        results.append(result)
        phases = ", ".join(f"{k} {v:.3f}" for k, v in result["seconds_per_edit_by_phase"].items())
        print(f"{size:>5} batch {batch:>3}: {result['seconds_per_edit']:.3f} s/edit ({phases}); peak "
              f"{result['peak_rss_gib']:.2f} GiB; statistics {result['statistics_seconds_per_100k_tokens']:.1f} s/100k tokens",
              flush=True)
    results = sorted(kept + results, key=lambda r: (r["parameters"], r["batch_size"]))
    measured = {(r["size"], r["batch_size"]) for r in results}
    all_batches = sorted({r["batch_size"] for r in results} | set(batches))
    missing = [(s, b) for s, b in itertools.product(SHAPES, all_batches) if (s, b) not in measured]
    projection = {f"batch_{b}": project(results, b) for b in all_batches}
    write_result(args.out, {"stats_tokens": args.stats_tokens, "target_state_steps": args.steps,
                            "skipped": [f"{s}:{b}" for s, b in missing], "results": results,
                            "projected_seconds_per_edit_at_8b": projection})
    print(f"projected seconds per edit at 8B parameters: {json.dumps(projection)}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
