"""An NSE editing session: the edited model's history, applied round by round, undoable, saved.

Invariant: for every edited layer l, W_l == cast(W_l_original + S_l), where S_l (float64) is
the sum of every committed update in commit order, and Kp_l == Σ Kᵀ K over the keys of every
committed round. Both are rebuilt from the stored rounds by the same sequence of operations,
so undo and resume reproduce the weights bit for bit.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file

from nse_engine.atomic import atomic_path
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import generate_context_prefixes, tokenize_at_subject
from nse_engine.editing.requests import EditRequest, FactOutcome, RoundResult
from nse_engine.editing.target_state import compute_target_states
from nse_engine.editing.tracing import LayerByLayerTrace, trace_states
from nse_engine.editing.update import LayerUpdate, residual_shares, solve_layer_update
from nse_engine.errors import Cancelled, EditError, ProjectError
from nse_engine.model.architecture import EditPoints, find_edit_points
from nse_engine.model.fingerprint import prefix_fingerprint
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import right_pad
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

STATE_FORMAT = 1
# A drifted earlier fact needs another pass while it is this share of alpha short of its goal.
EARLIER_TOLERANCE = 0.05


@dataclass
class EditRound:
    """One committed round: its requests, outcomes, updates (in order) and protected keys."""

    requests: list[EditRequest]
    outcomes: list[FactOutcome]
    updates: list[LayerUpdate]
    keys: dict[int, torch.Tensor]  # layer -> (n_applied, d_ff) float32, added to Kp
    editing_passes: int
    hparams: dict[str, object]
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    targets: torch.Tensor | None = None  # (n_applied, hidden) float32 z of the applied facts
    refreshed: list[str] = field(default_factory=list)  # earlier facts (prompt texts) pulled back


@dataclass
class _DriftedFacts:
    """Earlier edits to pull back in this round (see refresh_drifted)."""

    requests: list[EditRequest]
    targets: torch.Tensor  # (e, hidden) float64, their target states
    goal: torch.Tensor  # (e,) float64, distance from z each is pulled back to
    distance: torch.Tensor  # (e,) float64, distance from z now
    stored_keys: dict[int, torch.Tensor]  # layer -> (e, d_ff), their keys as Kp holds them

    @classmethod
    def none(cls, layers: tuple[int, ...], hidden: int, d_ff: int) -> _DriftedFacts:
        empty = torch.zeros(0, dtype=torch.float64)
        keys = {l: torch.zeros(0, d_ff) for l in layers}
        return cls([], torch.zeros(0, hidden, dtype=torch.float64), empty, empty, keys)


class EditingSession:
    """Owns the edits applied to one loaded model. Not thread-safe: one worker thread uses it."""

    def __init__(self, loaded: LoadedModel, hparams: NseHyperParams, points: EditPoints | None = None) -> None:
        self.loaded = loaded
        self.points = points or find_edit_points(loaded.model)
        hparams.validate(self.points.n_layers)
        self.hparams = hparams
        self.layers = tuple(hparams.layers)
        self.rounds: list[EditRound] = []
        self.prefixes: list[str] | None = None
        self.second_moments: dict[int, torch.Tensor] = {}
        w_device = self.points.weight(self.layers[0]).device
        self.solve_device = w_device if w_device.type == "cuda" else torch.device("cpu")
        # Original weights of every edited matrix, as (hidden, d_ff), on the CPU.
        self.original = {l: self.points.weight_view(l).detach().to("cpu", copy=True) for l in self.layers}
        self.offsets = {l: torch.zeros(self.original[l].shape, dtype=torch.float64) for l in self.layers}
        self.keys_gram = {
            l: torch.zeros((self.points.d_ff, self.points.d_ff), dtype=torch.float64, device=self.solve_device)
            for l in self.layers
        }
        self.base_fingerprint = prefix_fingerprint(loaded.model, self.points, self.layers[-1])

    # ----- weights -------------------------------------------------------------------------

    def _write_weights(self, layer: int, offset: torch.Tensor, neurons: torch.Tensor | None = None) -> None:
        """W[:, neurons] = cast(original + offset) for one layer (all neurons when None)."""
        view = self.points.weight_view(layer)
        with torch.no_grad():
            if neurons is None:
                view.copy_((self.original[layer].double() + offset).to(view.dtype))
            else:
                cols = (self.original[layer][:, neurons].double() + offset[:, neurons]).to(view.dtype)
                view[:, neurons.to(view.device)] = cols.to(view.device)

    @contextmanager
    def original_weights(self) -> Iterator[None]:
        """Temporarily the unedited model (weights rewinding; "compare with original")."""
        with torch.no_grad():
            for layer in self.layers:
                self.points.weight_view(layer).copy_(self.original[layer])
        try:
            yield
        finally:
            for layer in self.layers:
                self._write_weights(layer, self.offsets[layer])

    @property
    def n_edits(self) -> int:
        return sum(len(r.keys[self.layers[0]]) for r in self.rounds)

    # ----- one round -----------------------------------------------------------------------

    def apply_round(
        self, requests: list[EditRequest], control: JobControl | None = None, hparams: NseHyperParams | None = None
    ) -> RoundResult:
        """Edit `requests` into the model. All or nothing: on any failure or cancellation the
        weights and the session are exactly as before, and the error is raised."""
        control = control or silent()
        if hparams is not None:
            if tuple(hparams.layers) != self.layers:
                raise EditError("The edited layers cannot change within a project; start a new project.")
            hparams.validate(self.points.n_layers)
            self.hparams = hparams
        if not requests:
            raise EditError("Nothing to edit: the batch is empty.")
        for req in requests:
            self._check_request(req)
        touched: set[int] = set()
        try:
            with torch.no_grad():
                record = self._run_round(requests, control, touched)
        except BaseException as exc:
            for layer in touched:
                self._write_weights(layer, self.offsets[layer])
            if isinstance(exc, (Cancelled, KeyboardInterrupt, EditError)):
                raise
            if isinstance(exc, (FloatingPointError, torch.OutOfMemoryError, RuntimeError)):
                raise EditError(f"The batch could not be applied ({exc}); the model is unchanged.") from exc
            raise
        self._commit(record)
        return RoundResult(
            len(self.rounds) - 1, record.outcomes, record.editing_passes, record.seconds_by_phase, record.refreshed
        )

    def _check_request(self, req: EditRequest) -> None:
        if "{}" not in req.prompt:
            raise EditError(f"The prompt {req.prompt!r} has no '{{}}' where the subject goes.")
        if not req.subject.strip() or not req.target_new.strip():
            raise EditError("Subject and new object must not be empty.")

    def prepare(self, control: JobControl) -> None:
        """Context prefixes and key statistics, both from the original weights."""
        missing = [l for l in self.layers if l not in self.second_moments]
        if self.prefixes is not None and not missing:
            return
        with self.original_weights():
            if self.prefixes is None:
                self.prefixes = generate_context_prefixes(
                    self.loaded.model, self.loaded.tokenizer, self.hparams.context_prefixes,
                    self.hparams.context_prefix_tokens,
                )
            if missing:
                from nse_engine.stats.second_moment import StatsSpec, second_moments

                spec = StatsSpec() if not self.hparams.stats_tokens else StatsSpec(n_tokens=self.hparams.stats_tokens)
                moments = second_moments(self.loaded, self.points, list(self.layers), spec=spec, control=control)
                self.second_moments.update({l: m.to(self.solve_device, torch.float64) for l, m in moments.items()})

    def _run_round(self, requests: list[EditRequest], control: JobControl, touched: set[int]) -> EditRound:
        hp = self.hparams
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.prepare(control)
        timings["statistics"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        with torch.enable_grad(), self.original_weights():
            targets = compute_target_states(
                self.loaded.model, self.loaded.tokenizer, self.points, requests, hp, self.prefixes or [], control
            )
        timings["target_states"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        n = len(requests)
        everything = list(requests)  # new facts, then any earlier ones pulled back
        z = targets.z.to(self.solve_device, torch.float64)  # (n, hidden), later (n + e, hidden)
        # How close each row should get to z: new facts all the way (alpha decides when to stop),
        # a drifted earlier fact back to where its own round left it.
        goal = torch.zeros(n, dtype=torch.float64, device=self.solve_device)
        earlier = _DriftedFacts.none(self.layers, *self.original[self.layers[0]].shape)
        round_offset = {l: torch.zeros_like(self.offsets[l]) for l in self.layers}
        updates: list[LayerUpdate] = []
        layer_share = residual_shares(len(self.layers), hp.layer_share_ratio)
        dist_before = (z - self.hidden_at_last_layer(requests)).norm(dim=1)  # (n,)
        dist = dist_before
        passes = 0
        for passes_done in range(hp.max_iterations):
            far = torch.cat([dist[:n] > hp.alpha, dist[n:] - goal[n:] > EARLIER_TOLERANCE * hp.alpha])
            last_chance = passes_done == hp.max_iterations - 1 or not bool(far[:n].any())
            if hp.refresh_drifted and last_chance and len(everything) == n:
                # the round's earlier passes moved some earlier edits away: this pass pulls them back
                earlier = self._drifted_earlier_facts(requests)
                everything += earlier.requests
                z = torch.cat([z, earlier.targets.to(self.solve_device)])
                goal = torch.cat([goal, earlier.goal.to(self.solve_device)])
                dist = torch.cat([dist, earlier.distance.to(self.solve_device)])
                far = torch.cat([far, torch.ones(len(earlier.requests), dtype=torch.bool, device=far.device)])
            selected = (far & (dist < hp.upper_bound)).nonzero().flatten().cpu()
            if len(selected) == 0:
                break
            passes = passes_done + 1
            chosen = [everything[i] for i in selected.tolist()]
            trace, groups = self._layer_trace(chosen)
            for i, layer in enumerate(self.layers):
                control.report("layer updates", passes_done * len(self.layers) + i, hp.max_iterations * len(self.layers),
                               f"pass {passes}, layer {layer}, {len(chosen)} facts")
                keys, hidden = self._keys_and_hidden(trace, groups, layer)
                to_target = z[selected] - hidden  # (s, hidden)
                share = (1 - goal[selected] / to_target.norm(dim=1).clamp_min(1e-12)).clamp_min(0)  # (s,)
                residual = to_target * share[:, None] * layer_share[i]  # (s, hidden)
                update = solve_layer_update(
                    layer, keys, residual, self.second_moments[layer], self.keys_gram[layer],
                    hp.mom2_update_weight, hp.neuron_threshold, hp.earlier_edits_weight,
                    earlier.stored_keys[layer][selected[selected >= n] - n],  # sorted: earlier rows come last
                )
                round_offset[layer][:, update.neurons] += update.delta()
                touched.add(layer)
                self._write_weights(layer, self.offsets[layer] + round_offset[layer], update.neurons)
                updates.append(update)
            dist = (z - self.hidden_at_last_layer(everything)).norm(dim=1)
        control.report("layer updates", 1, 1, "done")
        timings["layer_updates"] = time.perf_counter() - t0

        for layer in touched:
            if not torch.isfinite(self.points.weight_view(layer)).all():
                raise FloatingPointError(f"layer {layer} has NaN or inf after the update")

        outcomes = []
        for i, req in enumerate(requests):
            before, after = float(dist_before[i]), float(dist[i])
            if before >= hp.upper_bound:
                outcomes.append(FactOutcome(req, False, (
                    f"its target state is {before:.1f} away from the model's state, beyond upper_bound "
                    f"{hp.upper_bound:g}; editing it could damage the model (raise upper_bound to force it)"
                ), before, after))
            else:
                outcomes.append(FactOutcome(req, True, None, before, after))
        applied = [o.request for o in outcomes if o.applied]
        protected = self.average_keys(applied, list(self.layers)) if applied else {
            l: torch.zeros((0, self.points.d_ff)) for l in self.layers
        }
        applied_z = targets.z[torch.tensor([o.applied for o in outcomes], dtype=torch.bool)].float().cpu()
        return EditRound(requests, outcomes, updates, protected, passes, hp.to_dict(), timings, applied_z,
                         [r.text for r in earlier.requests])

    def _drifted_earlier_facts(self, new: list[EditRequest]) -> _DriftedFacts:
        """Applied facts of earlier rounds that this round's passes moved farther from their target
        state than both alpha and the distance their own round left them at (targets stay valid
        for ever: weights rewinding computes them with the original weights, and nothing above
        the last edited layer is edited). A fact edited again later, or in this round, is superseded."""
        seen = {r.text for r in new}
        requests: list[EditRequest] = []
        targets: list[torch.Tensor] = []
        left_at: list[float] = []
        stored: dict[int, list[torch.Tensor]] = {l: [] for l in self.layers}
        for record in reversed(self.rounds):
            if record.targets is None:
                continue
            applied = [o for o in record.outcomes if o.applied]
            keep = []
            for o in applied:
                keep.append(o.request.text not in seen)
                seen.add(o.request.text)
            requests += [o.request for o, k in zip(applied, keep) if k]
            left_at += [o.distance_after for o, k in zip(applied, keep) if k]
            current = torch.tensor(keep, dtype=torch.bool)  # (a,)
            targets.append(record.targets[current])
            for layer in self.layers:
                stored[layer].append(record.keys[layer][current])
        if not requests:
            return _DriftedFacts.none(self.layers, *self.original[self.layers[0]].shape)
        z = torch.cat(targets).double()  # (e, hidden)
        dist = (z.to(self.solve_device) - self.hidden_at_last_layer(requests)).norm(dim=1).cpu()  # (e,)
        goal = torch.tensor(left_at, dtype=torch.float64)  # (e,)
        drifted = (dist > torch.clamp(goal, min=self.hparams.alpha)) & (dist < self.hparams.upper_bound)
        return _DriftedFacts(
            [r for r, d in zip(requests, drifted.tolist()) if d], z[drifted], goal[drifted], dist[drifted],
            {l: torch.cat(k)[drifted] for l, k in stored.items()},
        )

    def _commit(self, record: EditRound) -> None:
        self._replay_round(record)
        for layer in self.layers:
            self._write_weights(layer, self.offsets[layer])
        self.rounds.append(record)

    def _replay_round(self, record: EditRound) -> None:
        """Add one round to S and Kp: the single code path for commit, resume and undo."""
        round_offset = {l: torch.zeros_like(self.offsets[l]) for l in self.layers}
        for update in record.updates:
            round_offset[update.layer][:, update.neurons] += update.delta()
        for layer in self.layers:
            self.offsets[layer] += round_offset[layer]
            keys = record.keys[layer].to(self.solve_device, torch.float64)  # (n, d_ff)
            self.keys_gram[layer] += keys.T @ keys

    # ----- reading the model ---------------------------------------------------------------

    def _encode(self, requests: list[EditRequest], with_prefixes: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
        """Token ids for the bare prompt (and the prefixed copies) of each request, up to the
        subject's last token (nothing after it can change keys or states there in a causal
        model), and that token's index in each row; `groups[i]` counts rows per request."""
        templates = ["", *(self.prefixes or [])] if with_prefixes else [""]
        seqs, lookup = [], []
        for req in requests:
            for prefix in templates:
                ids, last = tokenize_at_subject(self.loaded.tokenizer, prefix, req.prompt, req.subject)
                seqs.append(ids[: last + 1])
                lookup.append(last)
        ids, mask = right_pad(seqs, self.loaded.tokenizer.pad_token_id)
        device = self.loaded.device
        return ids.to(device), mask.to(device), torch.tensor(lookup, device=device), [len(templates)] * len(requests)

    def hidden_at_last_layer(self, requests: list[EditRequest]) -> torch.Tensor:
        """Current block output at the last edited layer, at each bare prompt's subject token."""
        ids, mask, lookup, _ = self._encode(requests, with_prefixes=False)
        rows = torch.arange(len(lookup), device=ids.device)
        _, hidden = trace_states(self.loaded.model, self.points, ids, mask, rows, lookup, [], self.layers[-1])
        return hidden.to(self.solve_device, torch.float64)  # (n, hidden)

    def _layer_trace(self, requests: list[EditRequest]) -> tuple[LayerByLayerTrace, list[int]]:
        """One forward pass over the bare and prefixed prompts of `requests`, kept so that each
        edited layer's keys can be read after the layers below it were updated."""
        ids, mask, lookup, groups = self._encode(requests, with_prefixes=True)
        rows = torch.arange(len(lookup), device=ids.device)
        bare = torch.tensor([g * i for i, g in enumerate(groups)], device=ids.device)  # rows without a prefix
        trace = LayerByLayerTrace(
            self.loaded.model, self.points, ids, mask, rows, lookup, list(self.layers), self.layers[-1], bare
        )
        return trace, groups

    def _keys_and_hidden(self, trace: LayerByLayerTrace, groups: list[int], layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys at `layer` averaged over contexts (n, d_ff) and current hidden states at the
        last edited layer on the bare prompts (n, hidden), with every lower edited layer as it is now."""
        keys, hidden = trace.keys_and_state(layer)
        return self._group_mean(keys, groups), hidden.to(self.solve_device, torch.float64)

    def average_keys(self, requests: list[EditRequest], layers: list[int]) -> dict[int, torch.Tensor]:
        ids, mask, lookup, groups = self._encode(requests, with_prefixes=True)
        rows = torch.arange(len(lookup), device=ids.device)
        keys, _ = trace_states(self.loaded.model, self.points, ids, mask, rows, lookup, layers, None)
        return {l: self._group_mean(keys[l], groups).float().cpu() for l in layers}

    def _group_mean(self, keys: torch.Tensor, groups: list[int]) -> torch.Tensor:
        """Per request: half the bare prompt's key, half the mean over prefixed copies."""
        size = groups[0]
        per_request = keys.to(self.solve_device, torch.float64).view(len(groups), size, -1)  # (n, T, d_ff)
        if size == 1:
            return per_request[:, 0]
        return 0.5 * per_request[:, 0] + 0.5 * per_request[:, 1:].mean(1)  # (n, d_ff)

    # ----- history -------------------------------------------------------------------------

    def undo_last_round(self) -> EditRound:
        """Remove the last round: weights and Kp become exactly what they were before it."""
        if not self.rounds:
            raise EditError("There is no edit round to undo.")
        removed = self.rounds.pop()
        self._rebuild()
        return removed

    def restore_round(self, record: EditRound) -> None:
        """Put back a round removed by `undo_last_round` (when recording the undo failed)."""
        self.rounds.append(record)
        self._rebuild()

    def _rebuild(self) -> None:
        for layer in self.layers:
            self.offsets[layer].zero_()
            self.keys_gram[layer].zero_()
        for record in self.rounds:
            self._replay_round(record)
        for layer in self.layers:
            self._write_weights(layer, self.offsets[layer])

    # ----- persistence ---------------------------------------------------------------------

    def save_state(self, path: Path) -> None:
        """Write the whole session to one safetensors file, atomically."""
        tensors: dict[str, torch.Tensor] = {}
        rounds_meta = []
        for r, record in enumerate(self.rounds):
            for u, update in enumerate(record.updates):
                tensors[f"r{r}.u{u}.neurons"] = update.neurons.contiguous()
                tensors[f"r{r}.u{u}.left"] = update.left.contiguous()
                tensors[f"r{r}.u{u}.right"] = update.right.contiguous()
            for layer, keys in record.keys.items():
                tensors[f"r{r}.keys.{layer}"] = keys.contiguous()
            if record.targets is not None:
                tensors[f"r{r}.targets"] = record.targets.contiguous()
            rounds_meta.append({
                "requests": [q.to_dict() for q in record.requests],
                "outcomes": [
                    {"applied": o.applied, "reason": o.reason, "distance_before": o.distance_before,
                     "distance_after": o.distance_after} for o in record.outcomes
                ],
                "update_layers": [u.layer for u in record.updates],
                "editing_passes": record.editing_passes,
                "hparams": record.hparams,
                "seconds_by_phase": record.seconds_by_phase,
                "refreshed": record.refreshed,
            })
        metadata = {
            "format": str(STATE_FORMAT),
            "base_fingerprint": self.base_fingerprint,
            "architecture": self.points.architecture,
            "hparams": json.dumps(self.hparams.to_dict()),
            "prefixes": json.dumps(self.prefixes),
            "rounds": json.dumps(rounds_meta),
        }
        if not tensors:
            tensors["empty"] = torch.zeros(1)
        with atomic_path(Path(path)) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def from_state(cls, loaded: LoadedModel, path: Path, control: JobControl | None = None) -> EditingSession:
        """Restore a saved session onto the freshly loaded base model it was made from."""
        path = Path(path)
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                metadata = fh.metadata() or {}
            tensors = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise ProjectError(f"The editing state {path.name} cannot be read: {exc}") from exc
        if metadata.get("format") != str(STATE_FORMAT):
            raise ProjectError(f"{path.name} is not an editing state this version can read.")
        hparams = NseHyperParams.from_dict(json.loads(metadata["hparams"]))
        session = cls(loaded, hparams)
        if session.base_fingerprint != metadata["base_fingerprint"]:
            raise ProjectError(
                f"This project was edited on a different base model ({metadata.get('architecture')}, "
                f"fingerprint {metadata['base_fingerprint'][:12]}…) than the one loaded "
                f"({session.points.architecture}, {session.base_fingerprint[:12]}…). Load the model "
                "the project was created with."
            )
        session.prefixes = json.loads(metadata["prefixes"])
        for r, meta in enumerate(json.loads(metadata["rounds"])):
            requests = [EditRequest.from_dict(q) for q in meta["requests"]]
            outcomes = [FactOutcome(q, **o) for q, o in zip(requests, meta["outcomes"])]
            updates = [
                LayerUpdate(layer, tensors[f"r{r}.u{u}.neurons"], tensors[f"r{r}.u{u}.left"], tensors[f"r{r}.u{u}.right"])
                for u, layer in enumerate(meta["update_layers"])
            ]
            keys = {l: tensors[f"r{r}.keys.{l}"] for l in session.layers}
            session.rounds.append(EditRound(
                requests, outcomes, updates, keys, meta["editing_passes"], meta["hparams"],
                meta.get("seconds_by_phase", {}), tensors.get(f"r{r}.targets"), meta.get("refreshed", []),
            ))
        session._rebuild()
        return session

    def export_model(self, folder: Path) -> None:
        """Save the edited model as a standard Hugging Face folder (safetensors + tokenizer)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.loaded.model.save_pretrained(folder, safe_serialization=True)
        self.loaded.tokenizer.save_pretrained(folder)
