"""One editing round (NSE's Algorithm 1), given the facts' target states z.

    dist ← ‖z − h_L‖ for every new fact
    for pass = 1 … max_iterations:
        rows ← facts with alpha < dist < upper_bound               (iterative multi-layer editing)
        before the last pass: + earlier facts this round moved away (refresh_drifted, ours)
        for each edited layer l, lowest first:                      (editing_pass)
            K ← keys at l; R ← share_l · (z − h_L)                  (the residual spread over layers)
            S ← neurons covering neuron_threshold of Σ|K|           (neuron-level update)
            ΔW_S (λ C_SS + β Kp_SS + K_Sᵀ K_S) = Rᵀ K_S
        dist ← ‖z − h_L‖
    verify (ours): new facts whose prompt the model does not yet continue with the new object (or,
        for a chat model, whose chat question it does not answer with it) get up to
        verify_passes more passes of their own, until what it writes says it, while each
        stretch of passes still brings them VERIFY_MIN_PROGRESS closer to z

MEMIT_seq is this loop with one pass, every neuron and even shares; AlphaEdit the same with its
own layer solve (methods.py). The weights are written as the round goes; the caller keeps the
round all-or-nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nse_engine.answers import mentions, says, spells
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.ledger import WeightLedger
from nse_engine.editing.reading import FactReader
from nse_engine.editing.methods import LayerSolver
from nse_engine.editing.post_norm import value_change_for
from nse_engine.editing.update import LayerUpdate, residual_shares
from nse_engine.facts import EditRequest
from nse_engine.progress import JobControl

# A drifted earlier fact needs another pass while it is this share of alpha short of its goal.
EARLIER_TOLERANCE = 0.05
# A fact the model does not write gets another verification pass only while its last passes (the
# round's, then its last extra one) brought it at least this share closer to z, or the round left
# it within alpha (it stopped pushing it). One the round could not move is held back by the keys
# of earlier edits or general text: more passes barely move it and disturb the other facts
# (docs/research-log.md, 2026-12-06).
VERIFY_MIN_PROGRESS = 0.1


@dataclass(frozen=True)
class DriftedFacts:
    """Earlier edits this round moved away, to pull back in its last pass (see refresh_drifted)."""

    requests: list[EditRequest]
    targets: torch.Tensor  # (e, hidden) float64, their target states
    goal: torch.Tensor  # (e,) float64, the distance from z each is pulled back to
    distance: torch.Tensor  # (e,) float64, the distance from z now
    stored_keys: dict[int, torch.Tensor]  # layer -> (e, d_ff), their keys as Kp holds them


@dataclass(frozen=True)
class RoundRows:
    """The facts a round edits: its new facts first, then any earlier facts pulled back."""

    requests: list[EditRequest]
    targets: torch.Tensor  # (r, hidden) float64 on the solve device
    goal: torch.Tensor  # (r,) distance from z each row is edited to: 0 for new facts
    stored_keys: dict[int, torch.Tensor]  # layer -> (r - n_new, d_ff): the earlier rows' keys in Kp
    n_new: int

    @classmethod
    def new_facts(cls, requests: list[EditRequest], targets: torch.Tensor, layers: tuple[int, ...], d_ff: int) -> RoundRows:
        goal = torch.zeros(len(requests), dtype=torch.float64, device=targets.device)
        return cls(list(requests), targets, goal, {l: torch.zeros(0, d_ff) for l in layers}, len(requests))

    @property
    def has_earlier(self) -> bool:
        return len(self.requests) > self.n_new

    def with_earlier(self, drifted: DriftedFacts) -> RoundRows:
        device = self.targets.device
        return RoundRows(
            self.requests + drifted.requests,
            torch.cat([self.targets, drifted.targets.to(device)]),
            torch.cat([self.goal, drifted.goal.to(device)]),
            drifted.stored_keys,
            self.n_new,
        )

    def far(self, dist: torch.Tensor, alpha: float) -> torch.Tensor:
        """(r,) bool: rows still short of where they should get."""
        n = self.n_new
        return torch.cat([dist[:n] > alpha, dist[n:] - self.goal[n:] > EARLIER_TOLERANCE * alpha])


@dataclass
class RoundEdits:
    """What `run_nse_round` did: the updates in order, and how far each new fact was before and after."""

    updates: list[LayerUpdate]
    distance_before: torch.Tensor  # (n,) ‖z − h_L‖ before the round
    distance_after: torch.Tensor  # (n,)
    editing_passes: int
    pulled_back: list[EditRequest]
    checks: list[WrittenCheck]  # per new fact: what the model wrote after the round


@dataclass(frozen=True)
class WrittenCheck:
    """What the model wrote about a new fact at the end of the round, in both places a user reads
    it: the greedy completion of its prompt and, for a chat model, the reply to its chat question."""

    continuation: str
    completion_held: bool  # the continuation says target_new
    chat_reply: str | None  # the reply to the fact's chat question (None: a base model)
    chat_held: bool | None  # that reply states target_new and spells the subject (None: a base model)
    extra_passes: int  # passes the verification added before it held (or gave up)

    @property
    def held(self) -> bool:
        """The model says the new object wherever the user will read it."""
        return self.completion_held and self.chat_held is not False

    @classmethod
    def of(cls, request: EditRequest, continuation: str, chat_reply: str | None, extra_passes: int) -> WrittenCheck:
        # A reply that names the new object about a misspelt or another subject ("Yukon" for
        # "Yulin") is no answer about the fact: the user reads it as the edit having failed.
        chat_held = None if chat_reply is None else (
            mentions(chat_reply, request.target_new) and spells(chat_reply, request.subject))
        return cls(continuation, says(continuation, request.target_new), chat_reply, chat_held, extra_passes)


def check_written(
    reader: FactReader, requests: list[EditRequest], extra_passes: list[int], ask_chat: bool = True
) -> list[WrittenCheck]:
    """Each fact's completion and (chat models, with `ask_chat`) chat reply as the model writes
    them now, batched."""
    written = reader.continuations(requests)
    chat = (reader.chat_replies(requests) if ask_chat else None) or [None] * len(requests)
    return [WrittenCheck.of(*args) for args in zip(requests, written, chat, extra_passes)]


def run_nse_round(
    *,
    reader: FactReader,
    ledger: WeightLedger,
    hp: NseHyperParams,
    solve: LayerSolver,
    requests: list[EditRequest],
    targets: torch.Tensor,
    prefixes: list[str],
    control: JobControl,
) -> RoundEdits:
    """Edit `requests` towards `targets` (n, hidden) with up to `hp.passes.max_iterations` passes."""
    rows = RoundRows.new_facts(requests, targets.to(ledger.solve_device, torch.float64), ledger.layers, ledger.points.d_ff)
    round_offset = {l: torch.zeros_like(ledger.offsets[l]) for l in ledger.layers}
    updates: list[LayerUpdate] = []
    dist_before = (rows.targets - reader.hidden_at_last_layer(requests)).norm(dim=1)  # (n,)
    dist = dist_before
    passes = 0
    for pass_index in range(hp.passes.max_iterations):
        far = rows.far(dist, hp.passes.alpha)
        last_chance = pass_index == hp.passes.max_iterations - 1 or not bool(far[: rows.n_new].any())
        if hp.passes.refresh_drifted and last_chance and not rows.has_earlier:
            drifted = find_drifted_facts(reader, ledger, hp, requests)
            rows = rows.with_earlier(drifted)
            dist = torch.cat([dist, drifted.distance.to(dist.device)])
            far = torch.cat([far, torch.ones(len(drifted.requests), dtype=torch.bool, device=far.device)])
        selected = (far & (dist < hp.passes.upper_bound)).nonzero().flatten().cpu()  # sorted: earlier rows last
        if len(selected) == 0:
            break
        passes = pass_index + 1
        updates += editing_pass(
            reader=reader, ledger=ledger, hp=hp, solve=solve, rows=rows, selected=selected,
            round_offset=round_offset, prefixes=prefixes, control=control, pass_index=pass_index,
        )
        dist = (rows.targets - reader.hidden_at_last_layer(rows.requests)).norm(dim=1)
    checks = verify_written(
        reader=reader, ledger=ledger, hp=hp, solve=solve, rows=rows, distance_before=dist_before.cpu(),
        distance_after=dist[: rows.n_new].cpu(), round_offset=round_offset, prefixes=prefixes, control=control,
        updates=updates, first_pass=passes,
    )
    if any(check.extra_passes for check in checks):
        dist = (rows.targets - reader.hidden_at_last_layer(rows.requests)).norm(dim=1)
    control.report("layer updates", 1, 1, "done")
    return RoundEdits(updates, dist_before, dist[: rows.n_new], passes, rows.requests[rows.n_new :], checks)


def verify_written(
    *,
    reader: FactReader,
    ledger: WeightLedger,
    hp: NseHyperParams,
    solve: LayerSolver,
    rows: RoundRows,
    distance_before: torch.Tensor,
    distance_after: torch.Tensor,
    round_offset: dict[int, torch.Tensor],
    prefixes: list[str],
    control: JobControl,
    updates: list[LayerUpdate],
    first_pass: int,
) -> list[WrittenCheck]:
    """Check each new fact by what the model writes after its prompt and, for a chat model, in
    reply to its chat question (every round: what users see is held / not held); a fact whose
    completion (with `hp.passes.chat_passes`, or chat reply) does not say its new object yet gets
    another pass of its own (its keys, its whole residual), up to `hp.passes.verify_passes` times,
    while its passes still move it (VERIFY_MIN_PROGRESS; a fact the round left within alpha counts
    as moving).
    `distance_before` / `distance_after` (n,): ‖z − h‖ before and after the round's passes. Every
    verdict is from after the last pass: the others' extra passes can undo a fact that held before
    them. Only the facts that got a pass, or were checked before the last one, are asked again.
    Without `hp.passes.chat_passes` the passes go by the completion alone, so the chat questions are asked
    once, after the last pass, for the verdicts (each asking costs about as much as a pass).
    Appends those passes' updates to `updates`."""
    new = rows.requests[: rows.n_new]
    steps = hp.passes.verify_passes + 1
    chat = " and asking their chat questions" if reader.has_chat and hp.passes.chat_passes else ""
    control.report("verifying", 0, steps, f"continuing {len(new)} prompts{chat}")
    checks = check_written(reader, new, [0] * len(new), ask_chat=hp.passes.chat_passes)
    passes_run = 0
    started, now = distance_before.clone(), distance_after.clone()  # (n,) each fact's last stretch of passes
    moving = (now <= (1 - VERIFY_MIN_PROGRESS) * started) | (now <= hp.passes.alpha)  # (n,)
    moving &= distance_before < hp.passes.upper_bound
    for attempt in range(hp.passes.verify_passes):
        unsaid = [not (check.held if hp.passes.chat_passes else check.completion_held) for check in checks]
        failing = [i for i in range(len(new)) if unsaid[i] and bool(moving[i])]
        stuck = sum(1 for i in range(len(new)) if unsaid[i] and not moving[i])
        control.report("verifying", attempt + 1, steps, f"{len(failing)} facts not said yet, {stuck} not moving")
        if not failing:
            break
        passes_run = attempt + 1
        chosen = torch.tensor(failing)  # (f,)
        updates += editing_pass(
            reader=reader, ledger=ledger, hp=hp, solve=solve, rows=rows, selected=chosen,
            round_offset=round_offset, prefixes=prefixes, control=control, pass_index=first_pass + attempt,
        )
        started[chosen] = now[chosen]
        now[chosen] = (rows.targets[chosen] - reader.hidden_at_last_layer([new[i] for i in failing])).norm(dim=1).cpu()  # (f,)
        moving[chosen] = now[chosen] <= (1 - VERIFY_MIN_PROGRESS) * started[chosen]
        retried = check_written(reader, [new[i] for i in failing], [attempt + 1] * len(failing),
                                ask_chat=hp.passes.chat_passes)
        for i, check in zip(failing, retried):
            checks[i] = check
    stale = [i for i in range(len(new)) if checks[i].extra_passes < passes_run]  # checked before the last extra pass
    if stale:
        again = check_written(reader, [new[i] for i in stale], [checks[i].extra_passes for i in stale],
                              ask_chat=hp.passes.chat_passes)
        for i, check in zip(stale, again):
            checks[i] = check
    if not hp.passes.chat_passes and reader.has_chat:
        control.report("verifying", steps, steps, f"asking {len(new)} chat questions")
        chat_replies = reader.chat_replies(new) or []
        checks = [WrittenCheck.of(req, c.continuation, r, c.extra_passes) for req, c, r in zip(new, checks, chat_replies)]
    control.report("verifying", steps, steps, "done")
    return checks


def editing_pass(
    *,
    reader: FactReader,
    ledger: WeightLedger,
    hp: NseHyperParams,
    solve: LayerSolver,
    rows: RoundRows,
    selected: torch.Tensor,
    round_offset: dict[int, torch.Tensor],
    prefixes: list[str],
    control: JobControl,
    pass_index: int,
) -> list[LayerUpdate]:
    """Update every edited layer once, lowest first, for the rows `selected` (sorted indices);
    each layer takes its share of what is left of the residual after the layers below it."""
    chosen = [rows.requests[i] for i in selected.tolist()]
    reads = reader.layer_trace(chosen, prefixes, hp.target.chat_rows)
    layer_share = residual_shares(len(ledger.layers), hp.solve.layer_share_ratio)
    earlier = selected[selected >= rows.n_new] - rows.n_new  # (e,) which earlier rows are selected
    updates = []
    for i, layer in enumerate(ledger.layers):
        control.report("layer updates", pass_index * len(ledger.layers) + i,
                       # the most passes a round runs
                       (hp.passes.max_iterations + hp.passes.verify_passes) * len(ledger.layers),
                       f"pass {pass_index + 1}, layer {layer}, {len(chosen)} facts")
        keys, hidden, bare_keys = reads.keys_and_hidden(layer)  # (s, d_ff), (s, hidden), (s, d_ff)
        to_target = rows.targets[selected] - hidden  # (s, hidden)
        share = (1 - rows.goal[selected] / to_target.norm(dim=1).clamp_min(1e-12)).clamp_min(0)  # (s,)
        residual = to_target * share[:, None] * layer_share[i]  # (s, hidden)
        norm = ledger.points.mlp_output_norm(layer)
        if norm is not None:  # the projection's output reaches the residual through a norm (post_norm.py)
            projection = ledger.points.mlp_out(layer)
            values = projection(bare_keys.to(ledger.points.weight(layer).device, ledger.points.weight(layer).dtype))
            residual = value_change_for(residual, values, norm)
        update = solve(layer=layer, keys=keys, residuals=residual, earlier_stored_keys=rows.stored_keys[layer][earlier])
        round_offset[layer][:, update.neurons] += update.delta()
        ledger.write_weights(layer, ledger.offsets[layer] + round_offset[layer], update.neurons)
        updates.append(update)
    return updates


def find_drifted_facts(
    reader: FactReader, ledger: WeightLedger, hp: NseHyperParams, new: list[EditRequest]
) -> DriftedFacts:
    """Applied facts of earlier rounds that this round's passes moved farther from their target
    state than both alpha and the distance their own round left them at (targets stay valid
    for ever: weights rewinding computes them with the original weights, and nothing above
    the last edited layer is edited). A fact edited again later, or in this round, is superseded."""
    seen = {r.text for r in new}
    requests: list[EditRequest] = []
    targets: list[torch.Tensor] = []
    left_at: list[float] = []
    stored: dict[int, list[torch.Tensor]] = {l: [] for l in ledger.layers}
    for record in reversed(ledger.rounds):
        if record.targets is None:
            continue
        keep = []
        for o in record.applied:
            keep.append(o.request.text not in seen)
            seen.add(o.request.text)
        requests += [o.request for o, k in zip(record.applied, keep) if k]
        left_at += [o.distance_after for o, k in zip(record.applied, keep) if k]
        current = torch.tensor(keep, dtype=torch.bool)  # (a,)
        targets.append(record.targets[current])
        for layer in ledger.layers:
            stored[layer].append(record.keys[layer][current])
    hidden, d_ff = ledger.original[ledger.layers[0]].shape
    if not requests:
        empty = torch.zeros(0, dtype=torch.float64)
        return DriftedFacts([], torch.zeros(0, hidden, dtype=torch.float64), empty, empty,
                            {l: torch.zeros(0, d_ff) for l in ledger.layers})
    z = torch.cat(targets).double()  # (e, hidden)
    dist = (z.to(ledger.solve_device) - reader.hidden_at_last_layer(requests)).norm(dim=1).cpu()  # (e,)
    goal = torch.tensor(left_at, dtype=torch.float64)  # (e,)
    drifted = (dist > torch.clamp(goal, min=hp.passes.alpha)) & (dist < hp.passes.upper_bound)
    return DriftedFacts(
        [r for r, d in zip(requests, drifted.tolist()) if d], z[drifted], goal[drifted], dist[drifted],
        {l: torch.cat(k)[drifted] for l, k in stored.items()},
    )
