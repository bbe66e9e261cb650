"""How far each round moves each fact's state towards its target, and whether the model then says it.

Edits the first N dev facts in rounds of --batch-size (default: one round) with the model's
derived settings (plus any --set) and records, per fact, its round, the distance from its
target state at the last edited layer before and after its own round and at the end, whether
its round's check found the model writing the new object, and at the end the evaluation
(efficacy, generalization, specificity, what the prompt's greedy continuation says). Made for
Gemma 3, whose block outputs pass through a norm after the MLP (docs/method.md), to tell a
target the edit cannot reach from a solve too weak to deliver it; with rounds, to tell an edit
that never held from one a later round undid.

    python -m research.edit_reach --model gemma3-270m --cases PATH/facts_dev.jsonl --facts 4 \
        --set alpha=1 --set upper_bound=100000 --json research/results/edit_reach_gemma.json
"""

from __future__ import annotations

import argparse
import time

import torch

from nse_engine.editing.session import EditingSession
from nse_engine.evaluation import evaluate
from nse_engine.provenance import write_result
from research.dev_edits import SettingsRun, add_settings_run_arguments, parse_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_settings_run_arguments(parser, facts=4)
    parser.add_argument("--batch-size", type=int, default=0, help="facts per round (0: all in one round)")
    args = parse_arguments(parser)
    run = SettingsRun.from_arguments(args)
    loaded, hp, overrides, facts = run.loaded, run.hparams, run.overrides, run.facts
    batch = args.batch_size or len(facts)
    before = evaluate(loaded, facts, generation=True)
    session = EditingSession(loaded, hp, run.points)
    started = time.perf_counter()
    results = [session.apply_round(facts[i : i + batch]) for i in range(0, len(facts), batch)]
    seconds = time.perf_counter() - started
    after = evaluate(loaded, facts, generation=True)
    outcomes = [(r.round_index, o) for r in results for o in r.outcomes]
    applied = [o.request for record in session.rounds for o in record.applied]
    z = torch.cat([record.targets for record in session.rounds]).double().to(session.ledger.solve_device)
    at_end = dict(zip([r.text for r in applied], (z - session.reader.hidden_at_last_layer(applied)).norm(dim=1).tolist()))
    write_result(args.json, {
        "model": args.model, "facts": len(facts), "batch_size": batch, "overrides": overrides,
        "settings": hp.to_dict(), "edit_seconds": seconds, "editing_passes": [r.editing_passes for r in results],
        "before": {"efficacy": before.efficacy, "generalization": before.generalization,
                   "specificity": before.specificity, "generation": before.generation},
        "after": {"efficacy": after.efficacy, "generalization": after.generalization,
                  "specificity": after.specificity, "generation": after.generation},
        "per_fact": [
            {"round": index, "subject": o.request.subject, "target_new": o.request.target_new,
             "distance_before": o.distance_before, "distance_after": o.distance_after, "distance_at_end": at_end.get(o.request.text),
             "held_in_round": o.held, "extra_passes": o.extra_passes,
             "prob_new": f.prob_new, "continuation": f.generated}
            for (index, o), f in zip(outcomes, after.facts)
        ],
    })


if __name__ == "__main__":
    main()
