"""`nse stats`: compute (or load from cache) the key statistics NSE's update needs."""

from __future__ import annotations

import argparse

from nse_engine.cli.models import add_model_options
from nse_engine.cli.progress_bar import progress_bar_control
from nse_engine.errors import NseError
from nse_engine.stats.precision import STATS_PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="compute or load the key statistics E[kkᵀ] of the edited layers")
    p.add_argument("model", help="model folder, .gguf file, or 'default'")
    p.add_argument("--layers", help="comma-separated layers or ranges, e.g. 4,5,6 or 4-8 (default: the editing layers)")
    p.add_argument("--tokens", type=int, help="token positions to average over (default 131,072, the sample of derived "
                   "settings; a project whose settings say stats_tokens 0 uses 524,288)")
    p.add_argument("--corpus", default="default", help="'default' (bundled Wikipedia lead paragraphs) or a .txt / .jsonl file")
    p.add_argument("--seq-len", type=int, help="tokens per sequence, BOS included (default 128)")
    p.add_argument("--batch-size", type=int, help="sequences per forward pass (default 16)")
    p.add_argument("--precision", choices=STATS_PRECISIONS,
                   help="the pass's matrix products (default as derived settings choose: bfloat16 where this "
                        "device multiplies it at least three times as fast as float32)")
    p.add_argument("--nullspace-threshold", type=float, default=0.02,
                   help="also show how many eigen-directions of C lie below this (AlphaEdit's free space; paper 0.02)")
    add_model_options(p)
    p.set_defaults(run=run_stats)


def parse_layers(text: str) -> list[int]:
    """'4,5,6' or '4-8' or '2,4-6' -> sorted layer numbers."""
    layers: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            layers.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise NseError(f"--layers {text!r}: use numbers and ranges such as 4,5,6 or 4-8.") from None
    if not layers:
        raise NseError(f"--layers {text!r} names no layer.")
    return sorted(layers)


def run_stats(args: argparse.Namespace) -> int:
    from nse_engine.editing.derive import STATS_TOKENS, stats_precision_for
    from nse_engine.editing.hparams import default_layers
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model
    from nse_engine.stats.nullspace import eigenbasis
    from nse_engine.stats.second_moment import StatsSpec, layer_stats

    control = progress_bar_control()
    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, control, args.device_map)
    points = find_edit_points(loaded.model)
    layers = parse_layers(args.layers) if args.layers else list(default_layers(loaded.model, points.n_layers))
    precision = args.precision or stats_precision_for(loaded.device)[0]
    given = {"n_tokens": args.tokens or STATS_TOKENS, "seq_len": args.seq_len, "batch_size": args.batch_size,
             "precision": precision}
    spec = StatsSpec(corpus=args.corpus, **{name: value for name, value in given.items() if value is not None})
    stats = layer_stats(loaded, points, layers, spec, control)
    print(f"{loaded.name}: E[kkᵀ] of {points.blocks_path}.<i>.{points.mlp_out_path} inputs (d_ff {points.d_ff}), "
          f"corpus {args.corpus}, {precision} products")
    threshold = args.nullspace_threshold
    print(f"{'layer':>5}  {'tokens':>9}  {'seconds':>8}  {'trace':>11}  {f'free < {threshold:g}':>16}  cache")
    for layer, s in stats.items():
        source = "cached" if s.cached else "computed"
        basis = eigenbasis(s.moment)
        free = f"{basis.free_directions(threshold).shape[1]} ({basis.free_energy_share(threshold):.0%} energy)"
        print(f"{layer:>5}  {s.tokens:>9,}  {s.seconds:>8.1f}  {s.trace:>11.5g}  {free:>16}  {s.path} ({source})")
    return 0
