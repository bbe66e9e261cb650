"""How far towards its target state a fact's hidden state must get before the model prefers the new object.

For the first N dev facts: compute each target state z at the last edited layer with the
model's derived settings (as a round does), then put h + t · (z − h) at the subject's last
token of the bare prompt, for t from 0 to 1, and score the new and the true object
(teacher-forced mean log-probability, as efficacy does) and what the model writes greedily.
A round stops editing a fact once ‖z − h‖ < alpha; this tells which t that stop corresponds to
on a model, i.e. whether "within alpha of z" still means "says the new object" there.

    python -m research.reach_curve --model gemma3-270m --cases PATH/facts_dev.jsonl --facts 20 \
        --json research/results/reach_curve_gemma.json
"""

from __future__ import annotations

import argparse
import statistics

import torch

from nse_engine.answers import says
from nse_engine.editing.prompts import generate_context_prefixes, tokenize_at_subject
from nse_engine.editing.reach import state_at
from nse_engine.evaluation.scoring import score_targets
from nse_engine.editing.target_state import compute_target_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.loading import LoadedModel
from nse_engine.model.generation import greedy_continuations
from nse_engine.model.tokens import encode_target
from nse_engine.progress import silent
from nse_engine.provenance import write_result
from research.dev_edits import SettingsRun, add_settings_run_arguments, parse_arguments

FRACTIONS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def curve_of(loaded: LoadedModel, points: EditPoints, layer: int, req: EditRequest, z: torch.Tensor,
             h: torch.Tensor) -> list[dict[str, object]]:
    _, subject_at = tokenize_at_subject(loaded.tokenizer, "", req.prompt, req.subject)
    n_tokens = len(encode_target(loaded.tokenizer, req.target_new)) + 3
    rows = []
    for t in FRACTIONS:
        state = h + t * (z - h)
        with state_at(points, layer, subject_at, state):
            new, true = score_targets(loaded.model, loaded.tokenizer,
                                      [(req.text, req.target_new), (req.text, req.target_true)])
        with state_at(points, layer, subject_at, state):
            [written] = greedy_continuations(loaded.model, loaded.tokenizer, [req.text], n_tokens)
        rows.append({"t": t, "logprob_new": new.mean_logprob, "logprob_true": true.mean_logprob,
                     "prefers_new": new.mean_logprob > true.mean_logprob,
                     "says_new": says(written, req.target_new), "continuation": written})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_settings_run_arguments(parser, facts=20)
    args = parse_arguments(parser)
    run = SettingsRun.from_arguments(args)
    loaded, points, hp, overrides, facts = run.loaded, run.points, run.hparams, run.overrides, run.facts
    prefixes = generate_context_prefixes(loaded.model, loaded.tokenizer, hp.preparation.context_prefixes,
                                         hp.preparation.context_prefix_tokens)
    with torch.enable_grad():
        targets = compute_target_states(loaded.model, loaded.tokenizer, points, facts, hp, prefixes, silent())
    layer = hp.layers[-1]
    per_fact = []
    for i, req in enumerate(facts):
        z, h = targets.z[i], targets.h_init[i]
        per_fact.append({"subject": req.subject, "target_new": req.target_new, "distance": float((z - h).norm()),
                         "curve": curve_of(loaded, points, layer, req, z, h)})
    summary = {}
    for j, t in enumerate(FRACTIONS):
        summary[str(t)] = {
            "prefers_new": statistics.mean(f["curve"][j]["prefers_new"] for f in per_fact),
            "says_new": statistics.mean(f["curve"][j]["says_new"] for f in per_fact),
        }
    write_result(args.json, {"model": args.model, "facts": len(facts), "overrides": overrides, "layer": layer,
                             "alpha": hp.passes.alpha, "median_distance": statistics.median(f["distance"] for f in per_fact),
                             "by_fraction": summary, "per_fact": per_fact})


if __name__ == "__main__":
    main()
