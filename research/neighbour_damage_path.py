"""Through which positions does an edited model's damage reach a neighbour's answer?

Edits the first N dev facts in rounds (the default model's derived settings), then scores
neighbourhood checks (own answer against the fact's new object) with the edited layers' original
output restored at chosen positions of the neighbour prompt: nowhere, everywhere (the unedited
model), at the neighbour's subject tokens, at its last subject token only, or everywhere but
the subject. If restoring the subject's positions undoes the damage, it arrives through the
neighbour's own subject keys, which resemble edited ones; if restoring the other positions
does, it comes through the prompt's template. Checks are also grouped by whether the
neighbour's subject ends in the same token as some edited subject.

Only neighbour prompts that are not themselves edit prompts and that follow the fact's own
template (so the neighbour's subject can be located) are used: a seeded sample of `--checks`.

    python -m research.neighbour_damage_path --cases PATH/facts_dev.jsonl --facts 1000 --batch-size 100
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from nse_engine.editing.prompts import subject_span
from nse_engine.editing.session import EditingSession
from nse_engine.editing.tracing import removing_hooks
from nse_engine.evaluation.written import neighbourhood_checks
from nse_engine.model.generation import pad_id
from nse_engine.model.tokens import encode_target
from nse_engine.provenance import write_result
from research.dev_edits import EditRun, add_edit_run_arguments, parse_arguments

RESULTS = Path(__file__).parent / "results" / "neighbour_damage_path.json"
RESTORE = ("nowhere", "everywhere", "subject", "last_subject_token", "outside_subject")


def kept_share(kept: list[bool], members: list[bool]) -> dict[str, object]:
    chosen = [k for k, m in zip(kept, members) if m]
    return {"checks": len(chosen), "kept": sum(chosen) / len(chosen) if chosen else None}


def restore_mask(mode: str, subject: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """(batch, seq) bool: where `mode` puts the original output back."""
    return {
        "nowhere": torch.zeros_like(subject), "everywhere": torch.ones_like(subject), "subject": subject,
        "last_subject_token": last, "outside_subject": ~subject,
    }[mode]


@contextmanager
def restored_original(session: EditingSession, restore_at: dict[str, torch.Tensor],
                      layers: list[int] | None = None) -> Iterator[None]:
    """While active, each edited layer's output (or only `layers`') is the unedited one where
    restore_at["mask"] (batch, seq) is set; the caller sets the mask before each forward pass."""
    def hook_for(layer: int):
        change = (session.points.weight_view(layer).double() - session.ledger.original[layer].double()).float()  # (hidden, d_ff)

        def hook(_module, args, out):
            restore = restore_at["mask"].unsqueeze(-1)  # (batch, seq, 1)
            return torch.where(restore, out - args[0] @ change.T.to(args[0].dtype), out)
        return hook

    chosen = session.layers if layers is None else layers
    with removing_hooks([session.points.mlp_out(l).register_forward_hook(hook_for(l)) for l in chosen]):
        yield


@torch.no_grad()
def mean_logprobs(session: EditingSession, rows: list[tuple[list[int], int, int, list[int]]], mode: str) -> list[float]:
    """Mean log-probability of each row's target after its prompt, with `mode` restored."""
    model, tokenizer = session.loaded.model, session.loaded.tokenizer
    results = []
    restore_at: dict[str, torch.Tensor] = {}
    with restored_original(session, restore_at):
        for b in range(0, len(rows), 32):
            batch = rows[b : b + 32]
            seqs = [prompt + target for prompt, _, _, target in batch]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), pad_id(tokenizer), dtype=torch.long)
            attention = torch.zeros_like(ids)
            subject = torch.zeros(ids.shape, dtype=torch.bool)
            last = torch.zeros_like(subject)
            for i, (prompt, start, end, _) in enumerate(batch):
                ids[i, : len(seqs[i])] = torch.tensor(seqs[i])
                attention[i, : len(seqs[i])] = 1
                subject[i, start:end] = True
                last[i, end - 1] = True
            restore_at["mask"] = restore_mask(mode, subject, last)
            logprobs = model(input_ids=ids, attention_mask=attention).logits.float().log_softmax(-1)
            for i, (prompt, _, _, target) in enumerate(batch):
                predicted = logprobs[i, len(prompt) - 1 : len(prompt) - 1 + len(target)]  # (target, vocab)
                results.append(float(predicted.gather(1, torch.tensor(target)[:, None]).mean()))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_edit_run_arguments(parser)
    parser.add_argument("--checks", type=int, default=1500)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parse_arguments(parser)

    run = EditRun.from_arguments(args)
    tokenizer, hparams, cases = run.loaded.tokenizer, run.hparams, run.cases
    edit_prompts = {r.text for r in cases}
    checks = []
    for request in cases:
        before, _, after = request.prompt.partition("{}")
        for check in neighbourhood_checks(request):
            text = check.prompt
            fits = text.startswith(before) and text.endswith(after) and len(text) > len(before) + len(after)
            if fits and text not in edit_prompts:
                checks.append((request, check, text[len(before) : len(text) - len(after)]))
    random.Random(0).shuffle(checks)
    checks = checks[: args.checks]
    edited_last_tokens = Counter(
        ids[last] for ids, _, last in (subject_span(tokenizer, "", r.prompt, r.subject) for r in cases)
    )

    session = run.edit_in_rounds()

    own_rows, new_rows, shares_last = [], [], []
    for request, check, subject in checks:
        ids, start, last = subject_span(tokenizer, "", request.prompt, subject)
        end = last + 1  # the subject is ids[start:end]
        own_rows.append((ids, start, end, encode_target(tokenizer, check.target)))
        new_rows.append((ids, start, end, encode_target(tokenizer, request.target_new)))
        shares_last.append(edited_last_tokens[ids[end - 1]] > 0)
    kept: dict[str, list[bool]] = {}
    report: dict[str, object] = {"facts": len(cases), "batch_size": args.batch_size, "checks": len(checks),
                                 "settings": hparams.to_dict(), "restored": {}}
    for mode in RESTORE:
        own, new = mean_logprobs(session, own_rows, mode), mean_logprobs(session, new_rows, mode)
        kept[mode] = [o > n for o, n in zip(own, new)]
        report["restored"][mode] = {
            "kept": sum(kept[mode]) / len(kept[mode]),
            "mean_logprob_own_answer": sum(own) / len(own),
            "mean_logprob_new_object": sum(new) / len(new),
        }
    not_shared = [not s for s in shares_last]
    report["by_last_subject_token"] = {
        "shared_with_an_edited_subject": {
            "unedited": kept_share(kept["everywhere"], shares_last), "edited": kept_share(kept["nowhere"], shares_last),
        },
        "not_shared": {"unedited": kept_share(kept["everywhere"], not_shared), "edited": kept_share(kept["nowhere"], not_shared)},
    }
    write_result(args.json, report)
    print(json.dumps({k: report[k] for k in ("restored", "by_last_subject_token")}, indent=2))


if __name__ == "__main__":
    main()
