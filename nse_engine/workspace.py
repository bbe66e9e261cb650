"""One loaded model, its NSE editing session and its project log, kept in agreement.

The app's worker thread and the `nse edit` command both drive edits through a Workspace. Every
mutating call is all-or-nothing across the three: if editing, evaluating or committing fails or
is cancelled, the model, the session and the log are as they were before the call.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from nse_engine.editing.derive import default_hparams, settings_known
from nse_engine.editing.hparams import NseHyperParams, default_layers
from nse_engine.editing.settings import apply_settings, check_setting
from nse_engine.facts import EditRequest
from nse_engine.editing.session import EditingSession
from nse_engine.errors import DamagedStateError, EditError, ProjectError
from nse_engine.evaluation.counterfact import evaluate, prompt_probabilities
from nse_engine.evaluation.fluency import fluency_score
from nse_engine.evaluation.retention import retention_sample
from nse_engine.method_names import METHOD_NAMES
from nse_engine.model.architecture import EditPoints, find_edit_points
from nse_engine.model.fingerprint import prefix_fingerprint
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent
from nse_engine.store import BatchMetrics, FactEvaluation, Project
from nse_engine.store.log_rows import BatchChanges, first_round_retention

log = logging.getLogger(__name__)


class Workspace:
    """Owned by one thread: SQLite connections and the model must not cross threads.

    A workspace may be open before its model is prepared for editing (`open(derive=False)`):
    the log can be read and written and the model used for chat at once, while `prepare`
    derives the settings and computes the key statistics, one-time work cached per model.
    """

    def __init__(
        self, loaded: LoadedModel, session: EditingSession | None, project: Project, method: str | None = None,
        chosen_settings: Mapping[str, Any] | None = None, base_fingerprint: str | None = None,
    ) -> None:
        self.loaded = loaded
        self.session = session  # None until the settings are derived (prepare)
        self.project = project
        self.method = session.hparams.method if session is not None else (method or "nse")
        self.chosen_settings = dict(chosen_settings or {})  # applied to the settings `prepare` derives
        self.base_fingerprint = session.base_fingerprint if session is not None else base_fingerprint
        self.measure_fluency = True

    @classmethod
    def open(
        cls, loaded: LoadedModel, project_folder: Path, control: JobControl | None = None, method: str | None = None,
        settings: Mapping[str, Any] | None = None, derive: bool = True,
    ) -> Workspace:
        """Open (or create) the project and restore its edited model onto `loaded`.

        `method` (nse, memit, alphaedit) is chosen when a project is created and fixed from then
        on: naming another one for an existing project is refused. `settings` (such as the NAS
        and ENCORE switches) are a new project's own: recorded in its log until its first batch
        saves them with its state; a project with a state refuses different ones. With `derive`
        False, settings that must be measured on the model (minutes) are left to `prepare`.
        """
        control = control or silent()
        folder = Path(project_folder)
        project, _created = Project.open_or_create(folder)
        try:
            project.meta.check_compatible(method)
            chosen = project.meta.method or method or "nse"
            state = project.history.current_state_file()  # checked against its recorded checksum
            chosen_settings: dict[str, Any] = {}
            if state is not None:
                session = restored_session(loaded, state, folder, project.meta.base_model_source)
                _check_settings(session.hparams, settings or {}, folder)
                workspace = cls(loaded, session, project)
            else:
                chosen_settings = {**project.meta.chosen_settings, **(settings or {})}
                for name, value in chosen_settings.items():
                    check_setting(name, value)
                workspace = cls(loaded, None, project, chosen, chosen_settings)
                if derive or settings_known(loaded, chosen):
                    workspace.derive_settings(control)
                else:  # the layers the derived settings will edit give the fingerprint the check needs now
                    points = _points(loaded)
                    layers = (check_setting("layers", chosen_settings["layers"]) if "layers" in chosen_settings
                              else default_layers(loaded.model, points.n_layers))
                    last = layers[-1]
                    workspace.base_fingerprint = prefix_fingerprint(loaded.model, points, last)
            project.meta.check_base_model(loaded.source, workspace.base_fingerprint)
            project.meta.choose_method(workspace.method)
            if settings and state is None:
                project.meta.record_chosen_settings(chosen_settings)
        except BaseException:
            project.close()
            raise
        return workspace

    @property
    def prepared(self) -> bool:
        """Settings known and key statistics loaded: a batch starts editing at once."""
        return self.session is not None and self.session.prepared

    def derive_settings(self, control: JobControl | None = None) -> None:
        """The editing session, with the preset's settings or those derived (and cached) for this
        model; deriving measures the model on probe edits and computes its key statistics."""
        if self.session is not None:
            return
        points = _points(self.loaded)
        hparams = default_hparams(self.loaded, points, control or silent(), self.method)
        if self.chosen_settings:
            hparams = apply_settings(hparams, self.chosen_settings, points.n_layers)
        session = EditingSession(self.loaded, hparams)
        if self.base_fingerprint not in (None, session.base_fingerprint):  # checked at open with other layers
            self.project.meta.check_base_model(self.loaded.source, session.base_fingerprint)
        self.session, self.base_fingerprint = session, session.base_fingerprint

    def prepare(self, control: JobControl | None = None) -> None:
        """Prepare the model for editing: derive the settings if needed, then compute (or load
        from the cache) the key statistics of the edited layers. One-time work per model; a
        cancel leaves the workspace open and usable, and a later call redoes what was not cached."""
        control = control or silent()
        self.derive_settings(control)
        self.session.prepare(control)

    @property
    def hparams(self) -> NseHyperParams:
        if self.session is None:
            raise EditError("The model's one-time preparation for editing is not done yet; its settings are not known.")
        return self.session.hparams

    def original_weights(self):
        """Context manager: temporarily the unedited model (compare mode)."""
        return self.session.original_weights() if self.session is not None else nullcontext()

    def run_batch(
        self, fact_ids: list[int], control: JobControl | None = None, hparams: NseHyperParams | None = None
    ) -> BatchChanges:
        """Edit the given queued facts as one round, evaluate retention, commit to the log."""
        control = control or silent()
        queued = {r.fact_id: r for r in self.project.queue.queued_facts()}
        missing = [i for i in fact_ids if i not in queued]
        if missing:
            raise EditError(f"Facts {missing} are not queued in this project.")
        requests = [queued[i] for i in fact_ids]
        self.prepare(control)  # nothing left to do once the app's preparation has run
        earlier = self._applied_requests()
        started = datetime.now(timezone.utc)
        control.report("evaluation", 0, 1, "probabilities before the edit")
        before = {r.fact_id: probs for r, probs in zip(requests, prompt_probabilities(self.loaded, requests))}
        result = self.session.apply_round(requests, control, hparams)
        try:
            evaluations, metrics = self._evaluate_after_round(earlier, result.applied, control)
            applied = [o for o in result.outcomes if o.applied]
            batch = self.project.history.commit_batch(
                result.outcomes, METHOD_NAMES[self.hparams.method], self.hparams.to_dict(), started,
                datetime.now(timezone.utc),
                self.session.save_state if applied else None, evaluations, metrics, before,
            )
        except BaseException:
            self.session.undo_last_round()
            raise
        fact_ids = tuple(dict.fromkeys([*batch.fact_ids, *(e.fact_id for e in evaluations)]))
        return BatchChanges(
            batch_id=batch.id,
            applied_fact_ids=[o.request.fact_id for o in result.applied],
            failed={o.request.fact_id: o.reason or "not applied" for o in result.not_applied},
            retention=metrics.retention,
            seconds_by_phase=result.seconds_by_phase,
            metrics=metrics,
            refreshed=len(result.refreshed),
            batch=batch,
            point=self.project.queries.retention_point(batch),
            fact_ids=fact_ids,
            rows=tuple(self.project.queries.log_rows(fact_ids=fact_ids)),
        )

    def run_queue(
        self, fact_ids: Sequence[int], batch_size: int, hparams: NseHyperParams | None = None,
        control: JobControl | None = None,
    ) -> Iterator[BatchChanges]:
        """Edit queued facts in this order as consecutive batches of `batch_size`, yielding each
        batch's changes as soon as it is committed: the one batch loop of the app and `nse edit`.

        Each batch is all-or-nothing (`run_batch`). A cancel stops the run at its next check: the
        batches yielded stay, the running one leaves no trace. Only between batches, where the
        model is as committed, may pause points hand it to other work (the app's chat and queue edits).
        """
        control = control or silent()
        ids = list(fact_ids)
        for start in range(0, len(ids), batch_size):
            if start:
                with control.sharing():
                    control.pause_point()
            with control.holding():
                changes = self.run_batch(ids[start:start + batch_size], control, hparams)
            yield changes

    def _applied_requests(self) -> list[tuple[int, EditRequest]]:
        """(round index, request) of every applied edit in effect, oldest first."""
        return [
            (i, o.request)
            for i, record in enumerate(self.session.rounds)
            for o in record.outcomes
            if o.applied
        ]

    def _evaluate_after_round(
        self, earlier, applied_now, control: JobControl
    ) -> tuple[list[FactEvaluation], BatchMetrics]:
        sampled = retention_sample(earlier)
        sample = [r for _, r in sampled]
        current = [o.request for o in applied_now]
        summary = evaluate(self.loaded, sample + current, generation=False, control=control)
        scores = summary.facts
        evaluations = [
            FactEvaluation(s.fact_id, s.efficacy, s.prob_new, s.prob_true)
            for s in scores
            if s.fact_id is not None
        ]
        earlier_scores = scores[: len(sample)]
        metrics = BatchMetrics(
            retention=(sum(s.efficacy for s in earlier_scores) / len(earlier_scores)) if earlier_scores else None,
            efficacy=_mean([s.efficacy for s in scores[len(sample):]]),
            generalization=summary.generalization,
            specificity=summary.specificity,
            first_round_retention=first_round_retention(
                (rnd, s.efficacy) for (rnd, _), s in zip(sampled, earlier_scores)
            ) if earlier else None,
            fluency=fluency_score(self.loaded) if self.measure_fluency else None,
        )
        return evaluations, metrics

    def undo_last_batch(self, control: JobControl | None = None) -> BatchChanges:
        """Undo the newest batch in effect: weights, session and log go back together."""
        control = control or silent()
        newest = self.project.queries.newest_batch_in_effect()
        if newest is None:
            raise EditError("There is no batch to undo.")
        batch = self.project.queries.batch(newest)
        removed = self.session.undo_last_round() if batch.state_file is not None else None
        try:
            undone = self.project.history.undo_last_batch(self.session.save_state if removed is not None else None)
        except BaseException:
            if removed is not None:
                self.session.restore_round(removed)
            raise
        # its own facts become undone; the earlier ones it measured take their "now" from an earlier batch again
        measured = {e.fact_id for e in self.project.queries.evaluations(batch_id=batch.id)}
        fact_ids = tuple(sorted(set(batch.fact_ids) | measured))
        return BatchChanges(batch.id, [], {}, None, undone=True, batch=undone, fact_ids=fact_ids,
                            rows=tuple(self.project.queries.log_rows(fact_ids=fact_ids)))

    @contextmanager
    def closing(self) -> Iterator[Workspace]:
        try:
            yield self
        finally:
            self.project.close()


def restored_session(loaded: LoadedModel, state: Path, folder: Path, base_source: str | None = None) -> EditingSession:
    """The session a state file holds, on `loaded`; `DamagedStateError` when it gives NaN or
    infinite weights (a state saved damaged, though its checksum matches)."""
    set_aside = (f"Put it back from a backup, or run `nse rollback --project {folder} --discard-current` "
                 "to go back to the last good state.")
    try:
        session = EditingSession.from_state(loaded, state, base_source)
    except DamagedStateError as exc:
        raise DamagedStateError(f"{exc}. {set_aside}") from exc
    for layer in session.layers:
        if not torch.isfinite(session.points.weight_view(layer)).all():
            raise DamagedStateError(f"restoring {state.name} gives NaN or infinite weights in layer {layer}. {set_aside}")
    return session


def _check_settings(hparams: NseHyperParams, settings: Mapping[str, Any], folder: Path) -> None:
    """Refuse creation settings that differ from those of a project that already has edits."""
    differing = sorted(name for name, value in settings.items() if check_setting(name, value) != hparams.value(name))
    if differing:
        raise ProjectError(
            f"{folder} already has edits made with {', '.join(f'{n}={hparams.value(n)}' for n in differing)}; "
            "change settings for its next batch instead (the Advanced panel, or --set)."
        )


def _points(loaded: LoadedModel) -> EditPoints:
    return find_edit_points(loaded.model)


def _mean(values: list) -> float | None:
    return sum(float(v) for v in values) / len(values) if values else None
