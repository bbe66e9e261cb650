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

from nse_engine.editing.session import EditingSession
from nse_engine.evaluation import evaluate
from nse_engine.provenance import write_result
from research.dev_edits import SettingsRun, add_settings_run_arguments, parse_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_settings_run_arguments(parser, facts=4)
    args = parse_arguments(parser)
    run = SettingsRun.from_arguments(args)
    loaded, hp, overrides, facts = run.loaded, run.hparams, run.overrides, run.facts
    before = evaluate(loaded, facts, generation=True)
    started = time.perf_counter()
    result = EditingSession(loaded, hp, run.points).apply_round(facts)
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
