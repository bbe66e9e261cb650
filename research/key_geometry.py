"""How much the keys of different facts overlap at each block: the measurement behind the
derived layer range (nse_engine/editing/hparams.py: relative_depth_layers).

For the first N dev facts, each block's key at the subject (averaged over context prefixes, as
the editor does) is whitened by that block's general-text second moment C, since the
least-squares update moves a key k' by an amount proportional to kᵀ C⁻¹ k' when C dominates
the solve. Per block it records:
- participation ratio of the whitened cosine matrix: how many independent directions the
  facts' keys span (higher: edits disturb each other less);
- mean whitened cosine between facts whose subjects end in the same token, and between facts
  with the same true object (e.g. two Chinese cities: the overlap that costs specificity);
- median kᵀ C⁻¹ k / d_ff: how far the facts' keys stand out from general text.

    python -m research.key_geometry --cases PATH/facts_dev.jsonl --layers 0-14 --facts 1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nse_engine.bench import read_cases
from nse_engine.cli.stats import parse_layers
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import generate_context_prefixes
from nse_engine.editing.session import EditingSession
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.provenance import write_result
from nse_engine.stats.second_moment import layer_stats
from research.dev_edits import add_cases_argument, parse_arguments

RESULTS = Path(__file__).parent / "results" / "key_geometry.json"


def participation_ratio(gram: torch.Tensor) -> float:
    eigenvalues = torch.linalg.eigvalsh(gram)
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="0-14")
    parser.add_argument("--facts", type=int, default=1000)
    add_cases_argument(parser)
    args = parse_arguments(parser)

    layers = parse_layers(args.layers)
    loaded = load_model("default")
    points = find_edit_points(loaded.model)
    cases = read_cases(args.cases, args.facts)
    reader = NseHyperParams.flat(layers=tuple(range(layers[0], layers[-1] + 1)),
                                 v_lr=1.0, v_num_grad_steps=1, alpha=1.0, upper_bound=2.0, mom2_update_weight=1.0,
                                 neuron_threshold=1.0, context_prefixes=2)
    session = EditingSession(loaded, reader, points)
    session.prefixes = generate_context_prefixes(loaded.model, loaded.tokenizer, reader.preparation.context_prefixes,
                                                 reader.preparation.context_prefix_tokens)
    moments = {layer: stats.moment for layer, stats in layer_stats(loaded, points, layers).items()}
    parts = [session.reader.average_keys(cases[i : i + 100], layers, session.prefixes) for i in range(0, len(cases), 100)]

    tokenizer = loaded.tokenizer
    last_token = torch.tensor([
        tokenizer(c.subject if c.prompt.startswith("{}") else " " + c.subject, add_special_tokens=False)["input_ids"][-1]
        for c in cases
    ])
    others = ~torch.eye(len(cases), dtype=torch.bool)
    same_token = (last_token[:, None] == last_token[None]) & others
    same_true = torch.tensor([[a.target_true == b.target_true for b in cases] for a in cases]) & others

    results: dict[str, dict[str, float]] = {}
    for layer in layers:
        keys = torch.cat([p[layer] for p in parts]).double()  # (n, d_ff)
        moment = moments[layer]
        d_ff = moment.shape[0]
        ridge = 1e-4 * moment.diagonal().mean() * torch.eye(d_ff, dtype=torch.float64)
        gram = keys @ torch.linalg.solve(moment + ridge, keys.T)  # (n, n): kᵢᵀ C⁻¹ kⱼ
        norms = gram.diagonal().sqrt()
        cosine = gram / (norms[:, None] * norms[None])
        results[str(layer)] = {
            "whitened_participation_ratio": participation_ratio(cosine),
            "whitened_cos_same_last_token": float(cosine[same_token].mean()),
            "whitened_cos_same_true_object": float(cosine[same_true].mean()),
            "whitened_mean_abs_cos": float(cosine[others].abs().mean()),
            "median_mahalanobis_per_neuron": float(gram.diagonal().median() / d_ff),
        }
        print(layer, {k: round(v, 3) for k, v in results[str(layer)].items()}, flush=True)
    write_result(RESULTS, {"model": loaded.name, "facts": len(cases), "layers": results})


if __name__ == "__main__":
    main()
