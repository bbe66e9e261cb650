"""Why does an edited model misspell a subject its reply repeats, and through which positions?

Edits the first N dev facts in rounds (derived settings, plus any --set), then asks every
distinct subject "Tell me about {subject}." through the chat template, greedily, on the unedited
and the edited model. For the subjects the unedited model spells and the edited one does not,
the unedited reply is teacher-forced on the edited model, and the reply's first mention of the
subject is scored (mean log-probability of its tokens after the first, and whether each is the
argmax) with the edited layers' original output put back at chosen positions only:
- nowhere (the edited model), everywhere (the unedited model);
- the question's subject tokens: the edit fires there, and copying heads in the reply may
  read the edited state through attention;
- the question's last subject token only (where NSE writes the delta);
- the reply's positions: the edited keys of the reply's own tokens;
- the question's last subject token, at the last edited layer only (what the target state z
  sets) or at the layers below it only (what the solve adds on the way to z).

    python -m research.subject_spelling --cases PATH/facts_dev.jsonl --facts 100 --batch-size 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from nse_engine.chat import replies, subject_question
from nse_engine.editing.session import EditingSession
from nse_engine.model.generation import pad_id
from nse_engine.provenance import write_result
from research.dev_edits import EditRun, add_edit_run_arguments, parse_arguments
from research.neighbour_damage_path import restored_original

RESULTS = Path(__file__).parent / "results" / "subject_spelling.json"
RESTORE = ("nowhere", "everywhere", "question_subject", "question_last_subject_token", "reply",
           "question_last_subject_token_last_layer", "question_last_subject_token_lower_layers")
REPLY_TOKENS = 32


def spelling_rows(session: EditingSession, subject: str, reply: str) -> dict[str, object] | None:
    """Token ids of question + reply, the question's subject span, and the span of the reply's
    first mention of the subject (token indices), or None when they cannot be located."""
    tokenizer = session.loaded.tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": subject_question(subject)}],
                                           tokenize=False, add_generation_prompt=True)
    text = prompt + reply
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    asked = prompt.index(subject)
    said = text.find(subject, len(prompt))
    if said < 0:
        return None

    def span(start: int) -> list[int]:
        end = start + len(subject)
        return [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]

    question, mention = span(asked), span(said)
    reply_start = next(i for i, (a, _) in enumerate(offsets) if a >= len(prompt))
    if len(mention) < 2 or not question:
        return None
    return {"ids": ids, "question": question, "mention": mention, "reply_start": reply_start}


@torch.no_grad()
def mention_scores(session: EditingSession, rows: list[dict[str, object]], mode: str) -> list[tuple[float, bool]]:
    """Per row: mean log-prob of the mention's tokens after its first, and all of them argmax."""
    model, tokenizer = session.loaded.model, session.loaded.tokenizer
    restore_at: dict[str, torch.Tensor] = {}
    results = []
    layers = {"question_last_subject_token_last_layer": session.layers[-1:],
              "question_last_subject_token_lower_layers": session.layers[:-1]}.get(mode)
    with restored_original(session, restore_at, layers):
        for row in rows:
            ids = torch.tensor([row["ids"]])
            mask = torch.zeros(ids.shape, dtype=torch.bool)
            if mode == "everywhere":
                mask[:] = True
            elif mode == "question_subject":
                mask[0, row["question"]] = True
            elif mode.startswith("question_last_subject_token"):
                mask[0, row["question"][-1]] = True
            elif mode == "reply":
                mask[0, row["reply_start"]:] = True
            restore_at["mask"] = mask
            logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)  # (seq, vocab)
            wanted = row["mention"][1:]
            predicted = logprobs[[i - 1 for i in wanted]]  # (k, vocab)
            target = ids[0, wanted]
            results.append((float(predicted.gather(1, target[:, None]).mean()),
                            bool((predicted.argmax(1) == target).all())))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_edit_run_arguments(parser)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parse_arguments(parser)
    run = EditRun.from_arguments(args)
    if args.set:
        run.hparams = run.hparams.with_overrides(**{k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)})
    subjects = list(dict.fromkeys(r.subject for r in run.cases))
    questions = [subject_question(s) for s in subjects]
    before = replies(run.loaded, questions, REPLY_TOKENS)
    session = run.edit_in_rounds()
    after = replies(run.loaded, questions, REPLY_TOKENS)
    spelled_before = [s for s, r in zip(subjects, before) if s in r]
    misspelt = [(s, b, a) for s, b, a in zip(subjects, before, after) if s in b and s not in a]
    rows = [row for s, b, _ in misspelt if (row := spelling_rows(session, s, b)) is not None]
    report: dict[str, object] = {
        "facts": len(run.cases), "batch_size": args.batch_size, "settings": session.hparams.to_dict(),
        "subjects": len(subjects), "spelled_before": len(spelled_before), "misspelt_after": len(misspelt),
        "subject_spelling": 1 - len(misspelt) / len(spelled_before) if spelled_before else None,
        "examples": [{"subject": s, "before": b, "after": a} for s, b, a in misspelt[:20]],
        "located": len(rows), "restored": {},
    }
    for mode in RESTORE:
        scores = mention_scores(session, rows, mode)
        report["restored"][mode] = {
            "mean_logprob": sum(lp for lp, _ in scores) / len(scores) if scores else None,
            "spelled": sum(ok for _, ok in scores) / len(scores) if scores else None,
        }
    write_result(args.json, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("settings", "examples")}, indent=2))
    for example in report["examples"][:8]:
        print(f"{example['subject']!r}: {example['before'][:60]!r} -> {example['after'][:60]!r}")


if __name__ == "__main__":
    main()
