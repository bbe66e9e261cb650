"""How far one round moves each fact's state towards its target, and whether the model then says it.

Edits the first N dev facts in one round with the model's derived settings (plus any --set) and
records, per fact, the distance from the target state at the last edited layer before and
after the round, and the evaluation (efficacy, generalization, specificity, what the prompt's
greedy continuation says). Made for Gemma 3, whose block outputs pass through a norm after the
MLP (docs/method.md), to tell a target the edit cannot reach from a solve too weak to deliver it.

    python -m research.edit_reach --model gemma3-270m --cases PATH/facts_dev.jsonl --facts 4 \
        --set alpha=1 --set upper_bound=100000 --json research/results/edit_reach_gemma.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nse_engine.editing.derive import default_hparams
from nse_engine.editing.session import EditingSession
from nse_engine.editing.settings import apply_settings
from nse_engine.evaluation import evaluate
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.provenance import write_result
from nse_engine.bench import read_cases
from research.dev_edits import add_cases_argument, parse_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    add_cases_argument(parser)
    parser.add_argument("--facts", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, required=True)
    args = parse_arguments(parser)
    loaded = load_model(args.model)
    points = find_edit_points(loaded.model)
    overrides = dict(item.split("=", 1) for item in args.set)
    hp = apply_settings(default_hparams(loaded, points), overrides, points.n_layers)
    facts = read_cases(args.cases, args.facts)
    before = evaluate(loaded, facts, generation=True)
    started = time.perf_counter()
    result = EditingSession(loaded, hp, points).apply_round(facts)
    seconds = time.perf_counter() - started
    after = evaluate(loaded, facts, generation=True)
    write_result(args.json, {
        "model": args.model, "facts": len(facts), "overrides": overrides, "settings": hp.to_dict(),
        "round_seconds": seconds,
        "before": {"efficacy": before.efficacy, "generalization": before.generalization,
                   "specificity": before.specificity, "generation": before.generation},
        "after": {"efficacy": after.efficacy, "generalization": after.generalization,
                  "specificity": after.specificity, "generation": after.generation},
        "per_fact": [
            {"subject": o.request.subject, "target_new": o.request.target_new,
             "distance_before": o.distance_before, "distance_after": o.distance_after,
             "prob_new": f.prob_new, "continuation": f.generated}
            for o, f in zip(result.outcomes, after.facts)
        ],
    })


if __name__ == "__main__":
    main()
