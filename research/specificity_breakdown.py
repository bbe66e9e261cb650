"""Where specificity is lost after many edits: does a neighbour forget its own answer, or does
the edited fact's new object leak into it?

Edits the first N dev facts in rounds (the default model's derived settings), then scores every
neighbourhood check (a neighbour prompt, its own answer, the fact's new object) before and after.
For the checks that flip, it compares how far the neighbour's answer fell with how far the new
object rose, grouped by how many edits of the run use that new object and by how many move the
neighbour's answer away. Takes about as long as `nse bench` on the same facts.

    python -m research.specificity_breakdown --cases PATH/facts_dev.jsonl --facts 1000 --batch-size 100
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

from nse_engine.evaluation.counterfact import prefers
from nse_engine.answers import normalise_answer
from nse_engine.evaluation.written import neighbourhood_checks
from nse_engine.evaluation.scoring import score_targets
from nse_engine.provenance import write_result
from research.dev_edits import EditRun, add_edit_run_arguments, parse_arguments

RESULTS = Path(__file__).parent / "results" / "specificity_breakdown.json"
NEW_OBJECT_USES = ((1, 1), (2, 4), (5, None))
ANSWER_MOVED_BY = ((0, 0), (1, 9), (10, 49), (50, None))


def summarise(checks: list[dict]) -> dict[str, object]:
    """Share kept before and after, and the median log-prob changes overall and where lost."""
    if not checks:
        return {"checks": 0}
    lost = [c for c in checks if c["kept_before"] and not c["kept_after"]]
    summary: dict[str, object] = {
        "checks": len(checks),
        "kept_before": sum(c["kept_before"] for c in checks) / len(checks),
        "kept_after": sum(c["kept_after"] for c in checks) / len(checks),
        "median_change_own_answer": statistics.median(c["change_own_answer"] for c in checks),
        "median_change_new_object": statistics.median(c["change_new_object"] for c in checks),
        "lost": len(lost),
    }
    if lost:
        summary |= {
            "lost_median_change_own_answer": statistics.median(c["change_own_answer"] for c in lost),
            "lost_median_change_new_object": statistics.median(c["change_new_object"] for c in lost),
            "lost_share_answer_fell_more_than_new_rose": sum(
                -c["change_own_answer"] > c["change_new_object"] for c in lost
            ) / len(lost),
        }
    return summary


def grouped(checks: list[dict], field: str, groups: tuple[tuple[int, int | None], ...]) -> dict[str, object]:
    """`summarise` per range of `field` (inclusive; None: no upper end), keyed "low-high"."""
    return {
        f"{low}-{'more' if high is None else high}": summarise(
            [c for c in checks if c[field] >= low and (high is None or c[field] <= high)]
        )
        for low, high in groups
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_edit_run_arguments(parser)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parse_arguments(parser)

    run = EditRun.from_arguments(args)
    loaded, hparams, cases = run.loaded, run.hparams, run.cases
    edit_prompts = {r.text for r in cases}  # as `nse bench` counts unedited neighbours
    checks = [(r, n) for r in cases for n in neighbourhood_checks(r)]
    pairs = [pair for r, n in checks for pair in ((n.prompt, n.target), (n.prompt, r.target_new))]
    before = score_targets(loaded.model, loaded.tokenizer, pairs)
    run.edit_in_rounds()
    after = score_targets(loaded.model, loaded.tokenizer, pairs)

    new_object_uses = Counter(normalise_answer(r.target_new) for r in cases)
    answer_moved = Counter(normalise_answer(r.target_true) for r in cases if r.target_true)
    rows = []
    for i, (request, check) in enumerate(checks):
        own_before, new_before = before[2 * i], before[2 * i + 1]
        own_after, new_after = after[2 * i], after[2 * i + 1]
        rows.append({
            "unedited": check.prompt not in edit_prompts,
            "kept_before": prefers(own_before, new_before),
            "kept_after": prefers(own_after, new_after),
            "change_own_answer": own_after.mean_logprob - own_before.mean_logprob,
            "change_new_object": new_after.mean_logprob - new_before.mean_logprob,
            "new_object_uses": new_object_uses[normalise_answer(request.target_new)],
            "answer_moved_by": answer_moved[normalise_answer(check.target)],
        })
    unedited = [c for c in rows if c["unedited"]]
    report = {
        "facts": len(cases),
        "batch_size": args.batch_size,
        "settings": hparams.to_dict(),
        "all_checks": summarise(rows),
        "unedited_neighbour_prompts": summarise(unedited),
        "unedited_by_new_object_uses": grouped(unedited, "new_object_uses", NEW_OBJECT_USES),
        "unedited_by_answer_moved_away_by": grouped(unedited, "answer_moved_by", ANSWER_MOVED_BY),
    }
    write_result(args.json, report)
    print(json.dumps(report["all_checks"], indent=2))
    print(json.dumps(report["unedited_neighbour_prompts"], indent=2))


if __name__ == "__main__":
    main()
