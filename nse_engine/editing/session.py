"""An NSE editing session: rounds applied to one loaded model, all-or-nothing, undoable, saved.

The session ties together the weight ledger (history, S and Kp; ledger.py), the reads of facts
out of the model (reading.py), the round algorithm (nse_round.py) and the state file
(state_file.py); what differs between NSE, MEMIT and AlphaEdit its method decides (methods.py).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager

import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.ledger import EditRound, WeightLedger
from nse_engine.editing.memory_estimate import Placement
from nse_engine.editing.memory_plan import plan_for_loaded
from nse_engine.editing.methods import check_settings, method_for
from nse_engine.editing.norm_anchor import SKIP_RATIO, anchor_targets
from nse_engine.editing.nse_round import WrittenCheck, run_nse_round
from nse_engine.editing.prompts import generate_context_prefixes
from nse_engine.editing.reading import FactReader
from nse_engine.editing.schedule import settings_for_round
from nse_engine.editing.state_file import SavedSession, read_state, write_state
from nse_engine.editing.target_state import compute_target_states
from nse_engine.errors import Cancelled, EditError, ProjectError
from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.method_names import method_change_refused
from nse_engine.model.architecture import EditPoints, find_edit_points
from nse_engine.model.fingerprint import prefix_fingerprint
from nse_engine.model.loading import LoadedModel
from nse_engine.model.placement import require_editable
from nse_engine.progress import JobControl, silent
from nse_engine.stats.second_moment import StatsSpec, layer_stats

log = logging.getLogger(__name__)


@dataclass
class RoundResult:
    """The record of one edit round, as returned to the caller after it was committed."""

    round_index: int
    outcomes: list[FactOutcome]
    editing_passes: int
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    refreshed: list[str] = field(default_factory=list)  # earlier edits (prompt texts) pulled back

    @property
    def applied(self) -> list[FactOutcome]:
        return [o for o in self.outcomes if o.applied]

    @property
    def not_applied(self) -> list[FactOutcome]:
        return [o for o in self.outcomes if not o.applied]


class EditingSession:
    """Owns the edits applied to one loaded model. Not thread-safe: one worker thread uses it."""

    def __init__(
        self, loaded: LoadedModel, hparams: NseHyperParams, points: EditPoints | None = None,
        placement: Placement | None = None,
    ) -> None:
        """`placement` (memory_plan.plan_memory's choice) says where C and Kp live, in which
        dtype, and how the statistics are computed; by default the memory plan for this model
        and machine chooses it (C and Kp in float64 beside the edited layers when they fit)."""
        self.loaded = loaded
        self.points = points or find_edit_points(loaded.model)
        check_settings(hparams, self.points.n_layers)
        require_editable(loaded.model, self.points, tuple(hparams.layers))
        self.hparams = hparams
        self.method = method_for(hparams.method)  # fixed for the session: apply_round refuses another
        self.layers = tuple(hparams.layers)
        self.prefixes: list[str] | None = None
        self.second_moments: dict[int, torch.Tensor] = {}
        self.projections: dict[int, torch.Tensor] = {}  # the method's own tensors per layer (AlphaEdit's P)
        self.projected_at: float | None = None  # the method's `preparation` they were made for
        if placement is None:  # refuse now, with the numbers, rather than run out of memory mid-round
            plan = plan_for_loaded(loaded, self.points, self.layers)
            plan.require_fit()
            placement = plan.placement
        self.placement = placement
        solve_device = torch.device(self.placement.state_device)
        self.ledger = WeightLedger(self.points, self.layers, solve_device, self.placement.state_dtype)
        self.reader = FactReader(loaded, self.points, self.layers, solve_device)
        self.base_fingerprint = prefix_fingerprint(loaded.model, self.points, self.layers[-1])

    @property
    def rounds(self) -> list[EditRound]:
        return self.ledger.rounds

    @property
    def n_edits(self) -> int:
        return self.ledger.n_edits

    def original_weights(self) -> ContextManager[None]:
        """Temporarily the unedited model (weights rewinding; "compare with original")."""
        return self.ledger.original_weights()

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
            if hparams.method != self.hparams.method:
                raise EditError(method_change_refused(self.hparams.method, hparams.method))
            check_settings(hparams, self.points.n_layers)
            self.hparams = hparams
        if not requests:
            raise EditError("Nothing to edit: the batch is empty.")
        for req in requests:
            _check_request(req)
        try:
            with torch.no_grad():
                record = self._run_round(requests, control)
        except BaseException as exc:
            self.ledger.write_committed()
            if isinstance(exc, (Cancelled, KeyboardInterrupt, EditError)):
                raise
            if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
                raise EditError(
                    f"The batch ran out of memory ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                    "the model is unchanged. Edit fewer facts per round, or see the memory plan of `nse info`."
                ) from exc
            if isinstance(exc, (FloatingPointError, RuntimeError)):
                raise EditError(f"The batch could not be applied ({exc}); the model is unchanged.") from exc
            raise
        self.ledger.commit(record)
        return RoundResult(
            len(self.rounds) - 1, record.outcomes, record.editing_passes, record.seconds_by_phase, record.refreshed
        )

    def prepare(self, control: JobControl) -> None:
        """Context prefixes and key statistics (and the method's own tensors, AlphaEdit's projections),
        from the original weights."""
        missing = [l for l in self.layers if l not in self.second_moments]
        if self.prefixes is not None and not missing and self._method_prepared():
            return
        # rewound to the original weights: no pause point may hand this model to other work
        with self.original_weights(), control.holding() if self.rounds else nullcontext():
            if self.prefixes is None:
                self.prefixes = generate_context_prefixes(
                    self.loaded.model, self.loaded.tokenizer, self.hparams.preparation.context_prefixes,
                    self.hparams.preparation.context_prefix_tokens,
                )
            if missing:
                preparation = self.hparams.preparation
                tokens = {"n_tokens": preparation.stats_tokens} if preparation.stats_tokens else {}
                spec = StatsSpec(batch_size=self.placement.stats_batch_size, precision=preparation.stats_precision,
                                 **tokens)
                per_pass = self.placement.stats_layers_per_pass or len(missing)
                for start in range(0, len(missing), per_pass):  # each pass's moments stored before the next
                    stats = layer_stats(self.loaded, self.points, missing[start : start + per_pass], spec, control)
                    self.second_moments.update({
                        l: s.moment.to(self.ledger.solve_device, self.placement.state_dtype) for l, s in stats.items()})
                    del stats  # the CPU float64 copies go before the next pass
        if not self._method_prepared():
            moments = {l: self.second_moments[l] for l in self.layers}
            self.projections = self.method.prepare(self.hparams, moments, self.ledger.solve_device)
            self.projected_at = self.method.preparation(self.hparams)

    def _method_prepared(self) -> bool:
        return self.projected_at == self.method.preparation(self.hparams)

    @property
    def prepared(self) -> bool:
        """Whether `prepare` has nothing left to do for the settings in effect."""
        return (self.prefixes is not None and all(l in self.second_moments for l in self.layers)
                and self._method_prepared())

    def _run_round(self, requests: list[EditRequest], control: JobControl) -> EditRound:
        hp = settings_for_round(self.hparams, self.n_edits)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.prepare(control)
        prefixes = self.prefixes or []
        timings["statistics"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        skipped = torch.zeros(len(requests), dtype=torch.bool)
        with torch.enable_grad(), self.original_weights() if self.method.rewinds_targets else nullcontext():
            targets = compute_target_states(
                self.loaded.model, self.loaded.tokenizer, self.points, requests, hp, prefixes, control,
                stop_nll=hp.target.target_stop_nll,
                stop_margin=hp.target.target_stop_margin if hp.target.target_stop_top1 or hp.switches.encore else None,
            )
            z = targets.z
            if hp.switches.norm_anchoring:
                anchored = anchor_targets(z, targets.h_init, self.reader.mlp_output_at_last_layer(requests),
                                          hp.switches.norm_anchor)
                z, skipped = anchored.z, anchored.skipped
        timings["target_states"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        edited = [r for r, s in zip(requests, skipped.tolist()) if not s]
        solve = self.method.layer_solver(hp, self.second_moments, self.ledger.kp, self.projections)
        edits = run_nse_round(
            reader=self.reader, ledger=self.ledger, hp=hp, solve=solve,
            requests=edited, targets=z[~skipped], prefixes=prefixes, control=control,
        ) if edited else None
        timings["layer_updates"] = time.perf_counter() - t0
        for layer in self.layers:
            if not torch.isfinite(self.points.weight_view(layer)).all():
                raise FloatingPointError(f"layer {layer} has NaN or inf after the update")

        measured = iter(zip(edits.distance_before.tolist(), edits.distance_after.tolist(), edits.checks) if edits else ())
        outcomes = [
            _skipped(req) if s else _outcome(req, *next(measured), hp.passes.upper_bound)
            for req, s in zip(requests, skipped.tolist())
        ]
        applied = [o.request for o in outcomes if o.applied]
        keys = self.reader.average_keys(applied, list(self.layers), prefixes, hp.target.chat_rows) if applied else {
            l: torch.zeros((0, self.points.d_ff)) for l in self.layers
        }
        applied_z = z[torch.tensor([o.applied for o in outcomes], dtype=torch.bool)].float().cpu()
        return EditRound(requests, outcomes, edits.updates if edits else [], keys, edits.editing_passes if edits else 0,
                         hp.to_dict(), timings, applied_z, [r.text for r in edits.pulled_back] if edits else [])

    # ----- history -------------------------------------------------------------------------

    def undo_last_round(self) -> EditRound:
        """Remove the last round: weights and Kp become exactly what they were before it."""
        if not self.rounds:
            raise EditError("There is no edit round to undo.")
        return self.ledger.pop()

    def restore_round(self, record: EditRound) -> None:
        """Put back a round removed by `undo_last_round` (when recording the undo failed)."""
        self.ledger.push_back(record)

    # ----- persistence ---------------------------------------------------------------------

    def save_state(self, path: Path) -> None:
        """Write the whole session to one safetensors file, atomically."""
        write_state(path, SavedSession(
            self.base_fingerprint, self.points.architecture, self.hparams, self.prefixes, self.rounds
        ))

    @classmethod
    def from_state(cls, loaded: LoadedModel, path: Path, base_source: str | None = None) -> EditingSession:
        """Restore a saved session onto the freshly loaded base model it was made from; `base_source`
        (the project's record of that model) names it when another model is loaded."""
        saved = read_state(path)
        session = cls(loaded, saved.hparams)
        if session.base_fingerprint != saved.base_fingerprint:
            changed = (f"; the files in {loaded.source} are not the ones the project was made from "
                       "(was a model exported over them?)" if base_source == loaded.source else "")
            raise ProjectError(
                f"This project was edited on {base_source or 'a different base model'} ({saved.architecture}, "
                f"fingerprint {saved.base_fingerprint[:12]}…), not on the model loaded, {loaded.source} "
                f"({session.points.architecture}, fingerprint {session.base_fingerprint[:12]}…){changed}. "
                f"Load {'that model' if base_source else 'the model the project was created with'}."
            )
        session.prefixes = saved.prefixes
        session.ledger.rounds.extend(saved.rounds)
        session.ledger.rebuild()
        return session


def _check_request(req: EditRequest) -> None:
    if "{}" not in req.prompt:
        raise EditError(f"The prompt {req.prompt!r} has no '{{}}' where the subject goes.")
    if not req.subject.strip() or not req.target_new.strip():
        raise EditError("Subject and new object must not be empty.")


def _skipped(req: EditRequest) -> FactOutcome:
    return FactOutcome(req, False, (
        f"its target value is more than {SKIP_RATIO:g}× the anchor norm (NAS norm anchoring skips such edits; "
        "turn norm_anchoring off to force it)"
    ))


def _outcome(req: EditRequest, before: float, after: float, check: WrittenCheck, upper_bound: float) -> FactOutcome:
    written = {"continuation": check.continuation, "held": check.held, "extra_passes": check.extra_passes,
               "chat_reply": check.chat_reply, "completion_held": check.completion_held, "chat_held": check.chat_held}
    if before >= upper_bound:
        return FactOutcome(req, False, (
            f"its target state is {before:.1f} away from the model's state, beyond upper_bound "
            f"{upper_bound:g}; editing it could damage the model (raise upper_bound to force it)"
        ), before, after, **written)
    return FactOutcome(req, True, None, before, after, **written)
