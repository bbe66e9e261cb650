"""Target states z: the hidden state at the last edited layer that makes the model say target_new.

Computed with the ORIGINAL weights of the edited layers (weights rewinding; the caller swaps
them in) by a few Adam steps on one delta per fact, added at the subject's last token of the
prompt and of each context-prefixed copy, and (`chat_rows`, chat models) at every place the
subject is written in the fact as a chat turn: its question, and the reply restating the prompt
before the new object (AnyEdit's way of editing instruct models through their template). The blocks up to the delta run once per chunk of
facts; each step runs only the blocks above, and the LM head only where targets are scored.
All facts of a chunk are optimised together, each with its own delta.

Where the last edited block's MLP output passes through a norm before the residual (Gemma 2/3),
not every residual delta is one the block can produce: the norm fixes the size of the MLP's
contribution, so only its direction can change. There the delta is added to the MLP output
before the norm, scaled by ‖v‖/‖h‖ so that the step size, clamp and decay keep their meaning,
and z is the state that delta reaches; the editing passes can then deliver it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import chat_conversation, repeated_subject, tokenize_at_subject
from nse_engine.facts import EditRequest
from nse_engine.editing.tracing import SuffixReplay
from nse_engine.model.architecture import EditPoints
from nse_engine.model.tokens import encode_target
from nse_engine.progress import JobControl

# A fact stops once its rewriting loss (mean NLL of target_new) is below this. The authors test
# the whole loss, KL and weight decay included; on small models the KL term alone stays above
# 5e-2 once the delta is near its norm clamp, so their test never fires and every fact runs all
# steps (measured on SmolLM2: KL + decay ≈ 0.07–0.10 with NLL already at 0.01).
EARLY_STOP_NLL = 5e-2
# Facts whose target states are optimised together (the replay's rows are this × rows per fact).
CHUNK_FACTS = 32
_KL_TEMPLATE = "{} is a"


@dataclass
class TargetStates:
    z: torch.Tensor  # (n, hidden) target states at the last edited layer, float32
    h_init: torch.Tensor  # (n, hidden) original hidden states there
    loss: torch.Tensor  # (n,) final loss of each fact's optimisation
    steps: torch.Tensor  # (n,) Adam steps each fact took


@dataclass(frozen=True)
class _Run:
    """What every chunk of one `compute_target_states` call shares."""

    model: nn.Module
    tokenizer: Any
    points: EditPoints
    hp: NseHyperParams
    prefixes: list[str]
    control: JobControl
    total: int  # facts over all chunks, for progress
    stop_nll: float
    stop_margin: float | None


@dataclass
class _Batch:
    """One chunk of facts laid out for SuffixReplay: rewriting rows then one KL row per fact,
    left-padded so every row's subject token sits at position `split`. Target coordinates are
    relative to `split`."""

    input_ids: torch.Tensor  # (rows, seq)
    attention_mask: torch.Tensor  # (rows, seq)
    position_ids: torch.Tensor  # (rows, seq)
    split: int
    row_fact: torch.Tensor  # (rows,) which fact each row belongs to
    target_rows: torch.Tensor  # (t,) row of each scored target token
    target_cols: torch.Tensor  # (t,) position (from split) whose logits predict it
    target_ids: torch.Tensor  # (t,)
    target_fact: torch.Tensor  # (t,) fact of each scored token
    target_weight: torch.Tensor  # (t,) 1 / (len(target) * rewriting rows of the fact), or the repeat's share
    target_repeat: torch.Tensor  # (t,) bool: a token of a subject written again (spelling term), not of the new object
    kl_rows: torch.Tensor  # (n,) the "{subject} is a" row of each fact ((0,) in the chat rows' layout)
    bare_rows: torch.Tensor  # (n,) the prompt without prefix of each fact ((0,) in the chat rows' layout)
    delta_at: torch.Tensor  # (rows, seq - split) bool: where the row's delta is added (column 0 always)

    def keep(self, facts: torch.Tensor) -> tuple[_Batch, torch.Tensor]:
        """The layout of the facts where `facts` (bool, (n,)) is set, and which rows it keeps."""
        rows = facts[self.row_fact]  # (rows,)
        new_row = rows.long().cumsum(0) - 1
        new_fact = facts.long().cumsum(0) - 1
        scored = facts[self.target_fact]  # (t,)
        kept = _Batch(
            self.input_ids[rows], self.attention_mask[rows], self.position_ids[rows], self.split,
            new_fact[self.row_fact[rows]], new_row[self.target_rows[scored]], self.target_cols[scored],
            self.target_ids[scored], new_fact[self.target_fact[scored]], self.target_weight[scored],
            self.target_repeat[scored], new_row[self.kl_rows[facts[: len(self.kl_rows)]]],
            new_row[self.bare_rows[facts[: len(self.bare_rows)]]], self.delta_at[rows],
        )
        return kept, rows


@dataclass
class _Row:
    """One sequence of a fact: its ids, the subject token the delta goes to, and the tokens
    scored: each (position predicting it, token id, weight in the loss)."""

    ids: list[int]
    subject: int
    scored: list[tuple[int, int, float]]
    also: tuple[int, ...] = ()  # later positions that get the same delta (the subject written again)
    spelled: tuple[tuple[int, int, float], ...] = ()  # scored like `scored`, in the spelling term


def _rows(tokenizer, req: EditRequest, prefixes: list[str], repeat_weight: float,
          chat: bool = False, chat_subject_weight: float = 0.0) -> tuple[list[_Row], _Row, _Row | None, _Row | None]:
    """The rewriting rows of one fact (bare prompt first, then the prefixed copies), its KL row,
    its repeated-subject row when `repeat_weight` > 0 and the subject has tokens to spell after
    its first, and with `chat` and a chat template its chat row (a rewriting row too, whose
    reply's subject is spelled with `chat_subject_weight`)."""
    target = encode_target(tokenizer, req.target_new)
    contexts: list[tuple[list[int], list[int], list[int]]] = []  # (ids up to the new object, subject ends, spelled)
    for prefix in ["", *prefixes]:
        ids, last = tokenize_at_subject(tokenizer, prefix, req.prompt, req.subject)
        contexts.append((ids, [last], []))
    turn = chat_conversation(tokenizer, req) if chat else None
    if turn is not None and turn.subject_ends:
        # the reply writes the subject after the question did: its tokens after the first must follow
        spelled = turn.reply_subject[1:] if chat_subject_weight > 0 and len(turn.subject_ends) > 1 else []
        contexts.append((turn.ids, turn.subject_ends, spelled))
    weight = 1.0 / (len(target) * len(contexts))
    rewriting = []
    for ids, positions, spelled in contexts:
        scored = [(len(ids) - 1 + j, tok, weight) for j, tok in enumerate(target)]
        spelling = tuple((i - 1, ids[i], chat_subject_weight / len(spelled)) for i in spelled)
        rewriting.append(_Row(ids + target[:-1], positions[0], scored, tuple(positions[1:]), spelling))
    ids, last = tokenize_at_subject(tokenizer, "", _KL_TEMPLATE, req.subject)
    kl = _Row(ids, last, [])
    repeat = None
    found = repeated_subject(tokenizer, req.subject) if repeat_weight > 0 else None
    if found is not None and len(found[2]) > 1:
        ids, last, mention = found
        spelled = mention[1:]  # the reply picks the first token; the rest must follow from the first mention
        repeat = _Row(ids, last, [], spelled=tuple((i - 1, ids[i], repeat_weight / len(spelled)) for i in spelled))
    chat_row = rewriting.pop() if turn is not None and turn.subject_ends else None
    return rewriting, kl, repeat, chat_row


def suffix_length(tokenizer, req: EditRequest, prefixes: list[str], repeat_weight: float = 0.0,
                  chat: bool = False) -> int:
    """Tokens from the subject's first delta to the end of its longest row, the per-step cost of
    a fact."""
    rewriting, kl, repeat, chat_row = _rows(tokenizer, req, prefixes, repeat_weight, chat)
    return max(len(row.ids) - row.subject for row in [*rewriting, kl, *(r for r in (repeat, chat_row) if r)])


def _layouts(tokenizer, requests: list[EditRequest], prefixes: list[str], repeat_weight: float,
             device: torch.device, chat: bool = False, chat_subject_weight: float = 0.0) -> list[_Batch]:
    """The chunk's rows in one replay, and the chat rows (if any) in a second: a chat row's
    suffix runs from the question's subject to the reply's end, three times a prompt's, and in
    one replay every row would be padded to it."""
    per_fact = [_rows(tokenizer, req, prefixes, repeat_weight, chat, chat_subject_weight) for req in requests]
    ordered = [(f, row, "bare" if r == 0 else "rewrite") for f, (rows, *_) in enumerate(per_fact)
               for r, row in enumerate(rows)]
    ordered += [(f, kl, "kl") for f, (_, kl, _, _) in enumerate(per_fact)]
    ordered += [(f, repeat, "repeat") for f, (_, _, repeat, _) in enumerate(per_fact) if repeat is not None]
    chat_rows = [(f, row, "chat") for f, (*_, row) in enumerate(per_fact) if row is not None]
    return [_layout(tokenizer, rows, device) for rows in (ordered, chat_rows) if rows]


def _layout(tokenizer, ordered: list[tuple[int, _Row, str]], device: torch.device) -> _Batch:
    split = max(row.subject for _, row, _ in ordered)
    seqs: list[list[int]] = []
    row_fact, kl_rows, bare_rows, delta_rows, delta_cols = [], [], [], [], []
    t_rows, t_cols, t_ids, t_fact, t_weight, t_repeat = [], [], [], [], [], []
    for f, row, kind in ordered:
        if kind == "bare":
            bare_rows.append(len(seqs))
        if kind == "kl":
            kl_rows.append(len(seqs))
        for spelling, scored in ((False, row.scored), (True, row.spelled)):
            for position, tok, weight in scored:
                t_rows.append(len(seqs))
                t_cols.append(position - row.subject)
                t_ids.append(tok)
                t_fact.append(f)
                t_weight.append(weight)
                t_repeat.append(spelling)
        for position in (row.subject, *row.also):
            delta_rows.append(len(seqs))
            delta_cols.append(position - row.subject)
        seqs.append([-1] * (split - row.subject) + row.ids)  # -1 marks left padding
        row_fact.append(f)
    width = max(len(s) for s in seqs)
    padded = torch.tensor([s + [-1] * (width - len(s)) for s in seqs])  # (rows, seq)
    mask = (padded >= 0).long()
    input_ids = torch.where(mask.bool(), padded, torch.full_like(padded, tokenizer.pad_token_id))
    position_ids = (mask.cumsum(1) - 1).clamp_min(0)

    def t(values: list, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    delta_at = torch.zeros(len(seqs), width - split, dtype=torch.bool)  # (rows, suffix)
    delta_at[delta_rows, delta_cols] = True
    return _Batch(
        input_ids.to(device), mask.to(device), position_ids.to(device), split, t(row_fact), t(t_rows),
        t(t_cols), t(t_ids), t(t_fact), t(t_weight, torch.float32), t(t_repeat, torch.bool), t(kl_rows), t(bare_rows),
        delta_at.to(device),
    )


def compute_target_states(
    model: nn.Module,
    tokenizer,
    points: EditPoints,
    requests: list[EditRequest],
    hp: NseHyperParams,
    prefixes: list[str],
    control: JobControl,
    chunk_size: int = CHUNK_FACTS,
    stop_nll: float = EARLY_STOP_NLL,
    stop_margin: float | None = None,
) -> TargetStates:
    """z for every request, optimised in memory-bounded chunks of facts of similar length.

    `stop_margin` adds ENCORE's most-probable early stop (arXiv 2502.01636): a fact also stops
    once every token of its new object is the argmax on every rewriting prompt and chat row, ahead
    of the runner-up by at least `stop_margin` nats (0: ENCORE's rule; None: off).
    """
    target = hp.target
    order = sorted(range(len(requests)),
                   key=lambda i: suffix_length(tokenizer, requests[i], prefixes, target.subject_repeat_weight,
                                               target.chat_rows))
    run = _Run(model, tokenizer, points, hp, prefixes, control, len(requests), stop_nll, stop_margin)
    parts = [_optimise_chunk(run, [requests[i] for i in order[start : start + chunk_size]], start)
             for start in range(0, len(order), chunk_size)]
    merged = [torch.cat([getattr(p, name) for p in parts]) for name in ("z", "h_init", "loss", "steps")]
    inverse = torch.argsort(torch.tensor(order))
    return TargetStates(*(m[inverse] for m in merged))


def _optimise_chunk(run: _Run, requests: list[EditRequest], done_before: int) -> TargetStates:
    """Adam on one delta per fact. A fact stops once its rewriting loss is below `run.stop_nll`, and
    its rows are dropped from the replay at once (Adam's per-element state carried over, so the
    result is the same as without compaction)."""
    points, hp, stop_margin = run.points, run.hp, run.stop_margin
    device = points.lm_head.weight.device
    n = len(requests)
    batches = _layouts(run.tokenizer, requests, run.prefixes, hp.target.subject_repeat_weight, device,
                       hp.target.chat_rows, hp.target.chat_subject_weight)
    replays = [SuffixReplay(run.model, points, hp.layers[-1], b.input_ids, b.attention_mask, b.position_ids, b.split)
               for b in batches]
    h_init = replays[0].hidden[batches[0].bare_rows, 0].float()  # (n, hidden); position 0 is each row's subject token
    max_norm = hp.target.clamp_norm_factor * h_init.norm(dim=1)  # (n,)
    reached = torch.zeros_like(h_init)  # (n, hidden), the change of h_L each fact's final delta makes
    norm = points.mlp_output_norm(hp.layers[-1])
    loss_each = torch.zeros(n, device=device)
    stopped = torch.zeros(n, dtype=torch.bool, device=device)
    steps = torch.zeros(n, dtype=torch.long, device=device)
    kl_init: torch.Tensor | None = None  # (n, vocab) next-token distribution with delta = 0
    remaining = torch.arange(n, device=device)  # facts still being optimised
    param = torch.zeros_like(h_init, requires_grad=True)  # (m, hidden), the deltas of `remaining`
    opt = torch.optim.Adam([param], lr=hp.target.v_lr)

    def head(rows: torch.Tensor, cols: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        picked = points.final_norm(hidden[rows, cols])  # (k, hidden)
        return torch.log_softmax(points.lm_head(picked).float(), dim=-1)  # (k, vocab)

    for it in range(hp.target.v_num_grad_steps):
        nll = torch.zeros(len(remaining), device=device)  # (m,) the new object's NLL, weighted
        repeat = torch.zeros(len(remaining), device=device)  # (m,) the spelling terms' NLL, weighted
        missed = torch.zeros(len(remaining), device=device)  # (m,) new-object tokens not ahead by stop_margin
        for batch, replay in zip(batches, replays):
            h_base = replay.hidden  # (rows, suffix, hidden)
            at_rows, at_cols = batch.delta_at.nonzero(as_tuple=True)  # (d,) each place a delta is added
            shift = param[batch.row_fact[at_rows]]  # (d, hidden), float32
            if norm is not None:
                shift = _through_norm(norm, replay.value[at_rows, at_cols], h_base[at_rows, at_cols], shift)
            added = torch.zeros(h_base.shape, dtype=shift.dtype, device=device).index_put((at_rows, at_cols), shift)
            out = replay.run(h_base + added.to(h_base.dtype))  # (rows, suffix, hidden)
            target_logp = head(batch.target_rows, batch.target_cols, out)  # (t, vocab)
            picked = target_logp.gather(1, batch.target_ids[:, None]).squeeze(1)  # (t,)
            weighted = -picked * batch.target_weight  # (t,)
            rewrite = ~batch.target_repeat
            nll = nll.index_add(0, batch.target_fact[rewrite], weighted[rewrite])
            repeat = repeat.index_add(0, batch.target_fact[batch.target_repeat], weighted[batch.target_repeat])
            if stop_margin is not None:
                missed = missed.index_add(0, batch.target_fact, (_short_of_margin(target_logp.detach(), batch.target_ids,
                                                                                  stop_margin) & rewrite).float())
            if len(batch.kl_rows):  # the first layout: KL rows, and the bare prompts z is read at
                kl_logp = head(batch.kl_rows, torch.zeros_like(batch.kl_rows), out)  # (m, vocab)
                reached[remaining] = added.detach()[batch.bare_rows, 0]
        if kl_init is None:
            kl_init = kl_logp.detach()
        kl = hp.target.kl_factor * (kl_logp.exp() * (kl_logp - kl_init[remaining])).sum(1)  # (m,) KL(now ‖ original)
        decay = hp.target.v_weight_decay * param.norm(dim=1) / h_init[remaining].norm(dim=1) ** 2  # (m,)
        loss = nll + kl + decay + repeat  # (m,)
        loss_each[remaining] = loss.detach()
        done = nll.detach() < run.stop_nll  # (m,)
        if stop_margin is not None:
            done |= missed == 0
        stopped[remaining] = done
        run.control.report("target states", done_before + int(stopped.sum()), run.total)
        if bool(done.all()) or it == hp.target.v_num_grad_steps - 1:
            break
        opt.zero_grad()
        loss[~done].sum().backward()
        opt.step()
        steps[remaining[~done]] += 1
        with torch.no_grad():
            norms = param.norm(dim=1)  # (m,)
            limit = max_norm[remaining]
            param.mul_(torch.where(norms > limit, limit / norms.clamp_min(1e-12), torch.ones_like(norms))[:, None])
        if bool(done.any()):  # drop the finished facts' rows; Adam's per-element state goes with the rest
            keep = ~done
            for g, replay in enumerate(replays):
                batches[g], kept_rows = batches[g].keep(keep)
                replay.keep_rows(kept_rows)
            remaining = remaining[keep]
            state = opt.state[param]
            param = param.detach()[keep].clone().requires_grad_(True)
            opt = torch.optim.Adam([param], lr=hp.target.v_lr)
            opt.state[param] = {k: (v[keep].clone() if v.dim() > 0 else v.clone()) for k, v in state.items()}
    run.control.report("target states", done_before + n, run.total)
    z = (h_init + reached).float()
    return TargetStates(z.cpu(), h_init.cpu(), loss_each.cpu(), steps.cpu())


def _short_of_margin(logp: torch.Tensor, target_ids: torch.Tensor, margin: float) -> torch.Tensor:
    """(t,) bool: the target token is not the argmax of `logp` (t, vocab), or leads the runner-up
    by less than `margin` nats."""
    if margin == 0:
        return logp.argmax(dim=1) != target_ids
    target = logp.gather(1, target_ids[:, None]).squeeze(1)  # (t,)
    others = logp.scatter(1, target_ids[:, None], float("-inf")).max(dim=1).values  # (t,)
    return target - others < margin


def _through_norm(norm: nn.Module, value: torch.Tensor, hidden: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The change of the block output (d, hidden), float32, when `delta` (residual units) is
    added to the MLP output `value` (d, hidden) before `norm`; `hidden` is h_L at the same places.
    In float32 whatever the model's dtype: the change is a difference of two norm outputs."""
    value = value.float()
    scale = value.norm(dim=1, keepdim=True) / hidden.float().norm(dim=1, keepdim=True)  # (rows, 1)
    return (norm(value + delta * scale) - norm(value)).float()
