"""Exporting the edited model: a standard Hugging Face folder that says what was edited.

The folder holds the weights (safetensors) and tokenizer, `edits.json` (every edit in effect:
its fact, its batch, when it was applied, the method and the batch's settings, and the base
model it was made on) and a `README.md` model card. It is written by export_folder.py's rules:
only into a new or empty folder (or one the user agreed to replace), never over the base model
or a project, all at once or not at all. The app exports its open workspace; `nse export`
opens the project read-only and restores its edited model with `export_project`.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

from safetensors import SafetensorError

from nse_engine.errors import OutputFileError, ProjectError
from nse_engine.export_folder import ExportPlan, base_model_path, check_export_target, staged_folder
from nse_engine.method_names import METHOD_NAMES
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent
from nse_engine.store import Project
from nse_engine.store.records import Batch, Fact

log = logging.getLogger(__name__)

EDITS_FILE = "edits.json"
CARD_FILE = "README.md"
EDITS_FORMAT = "nse-studio-edits"
EDITS_VERSION = 1
CARD_ROWS = 50  # edits listed in the model card; edits.json lists them all
SPACE_MARGIN = 1.05  # the tokenizer, config and safetensors headers beside the weights


def plan_export(project: Project, folder: Path, base_source: str, replace: bool = True) -> ExportPlan:
    """What exporting into `folder` would replace and how many edits it holds; raises
    `OutputFileError` for a folder an export may never write (base model, project)."""
    replaces = check_export_target(Path(folder), _protected(project, base_source), replace)
    return ExportPlan(replaces, project.queries.count_facts(status="applied"))


def export_model(
    loaded: LoadedModel, project: Project, folder: Path, fingerprint: str | None, control: JobControl | None = None,
    replace: bool = False, allow_unedited: bool = False,
) -> int:
    """Write `loaded` (edited as `project`'s log says) into `folder`; returns the number of edits.

    `replace` allows a non-empty folder (after the user confirmed it); `allow_unedited` allows a
    project with no edit in effect. `fingerprint` is the base model's (the editing session's).
    """
    control = control or silent()
    folder = Path(folder)
    check_export_target(folder, _protected(project, loaded.source), replace)
    facts = project.queries.facts(status="applied")
    if not facts and not allow_unedited:
        raise ProjectError(f"nothing is edited in {project.folder}: an export would be the base model unchanged")
    _require_space(loaded, folder)
    record = edits_record(loaded, project, facts, fingerprint)
    steps = 4
    control.report("export", 0, steps, f"writing the weights to {folder}")
    with staged_folder(folder, replace) as staging:
        try:
            loaded.model.save_pretrained(staging, safe_serialization=True)
        except SafetensorError as exc:  # the disk failed under safetensors' own writer
            raise OSError(str(exc).splitlines()[0]) from exc
        control.report("export", 1, steps, "writing the tokenizer")
        loaded.tokenizer.save_pretrained(staging)
        control.report("export", 2, steps, f"writing {EDITS_FILE} and {CARD_FILE}")
        (staging / EDITS_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(model_card(record), encoding="utf-8")
        control.report("export", 3, steps, "moving the folder into place")
    control.report("export", steps, steps, "done")
    log.info("exported %d edits to %s", len(facts), folder)
    return len(facts)


def export_project(
    loaded: LoadedModel, project_folder: Path, folder: Path, control: JobControl | None = None,
    allow_unedited: bool = False,
) -> int:
    """`nse export`: the project opened read-only (another window may edit it), its edited model
    restored onto `loaded` (the base model, checked), written into the new or empty `folder`."""
    from nse_engine.workspace import restored_session

    with Project.open(Path(project_folder), read_only=True) as project:
        state = project.history.current_state_file()
        fingerprint = project.meta.base_model_fingerprint
        if state is not None:
            session = restored_session(loaded, state, Path(project_folder))
            project.meta.check_base_model(loaded.source, session.base_fingerprint)
            fingerprint = session.base_fingerprint
        return export_model(loaded, project, folder, fingerprint, control, allow_unedited=allow_unedited)


# ---- what the folder says about its edits ------------------------------------------------------


def edits_record(loaded: LoadedModel, project: Project, facts: list[Fact], fingerprint: str | None) -> dict:
    """edits.json: each edit in effect with its batch, and each such batch's method and settings."""
    batches = {b.id: b for b in project.queries.batches(include_undone=False)}
    return {
        "format": EDITS_FORMAT,
        "version": EDITS_VERSION,
        "exported_at": _now(),
        "exported_with": "NSE Studio",
        "base_model": {
            "source": loaded.source,
            "recorded_source": project.meta.base_model_source,
            "name": loaded.name,
            "architecture": loaded.architecture,
            "fingerprint": fingerprint,
        },
        "method": METHOD_NAMES.get(project.meta.method or "", project.meta.method),
        "edits": [_edit(fact, batches.get(fact.batch_id)) for fact in facts],
        "batches": [_batch(b) for b in batches.values() if b.applied_count],
    }


def _edit(fact: Fact, batch: Batch | None) -> dict:
    request = fact.request
    entry: dict[str, object] = {
        "fact_id": fact.id,
        "subject": request.subject,
        "prompt": request.prompt,
        "text": request.text,
        "target_new": request.target_new,
        "target_true": request.target_true,
    }
    if request.paraphrases:
        entry["paraphrases"] = list(request.paraphrases)
    if request.questions:
        entry["questions"] = list(request.questions)
    if request.relation:
        entry["relation"] = request.relation
    entry.update({
        "batch": fact.batch_id,
        "applied_at": batch.finished_at if batch else None,
        "method": batch.method if batch else None,
    })
    return entry


def _batch(batch: Batch) -> dict:
    return {"id": batch.id, "applied_at": batch.finished_at, "method": batch.method,
            "applied": batch.applied_count, "settings": batch.hparams}


def model_card(record: dict) -> str:
    """README.md of the exported folder: the base model, what was edited, with what, and when."""
    base, edits = record["base_model"], record["edits"]
    methods = sorted({e["method"] for e in edits if e["method"]}) or [record["method"] or "none"]
    lines = [
        "---", "library_name: transformers", "tags:", "- knowledge-editing", "- nse-studio", "---", "",
        f"# {base['name']}, edited with NSE Studio", "",
        f"The weights of {base['name']} ({base['architecture']}) with {_count(len(edits), 'fact')} edited into "
        "them by NSE Studio. Everything else is the base model's.", "",
        f"- Base model: `{base['source']}` (fingerprint `{(base['fingerprint'] or 'not recorded')[:16]}`)",
        f"- Edits in effect: {len(edits)} ({_count(len(record['batches']), 'batch')})",
        f"- Method: {', '.join(methods)}",
        f"- Exported: {record['exported_at']}", "",
    ]
    if not edits:
        lines += ["No edit was in effect: these are the base model's weights unchanged.", ""]
        return "\n".join(lines)
    lines += ["## Edits", "", f"Every edit, with its batch's settings, is in `{EDITS_FILE}`.", "",
              "| prompt | new object | was | batch |", "| --- | --- | --- | --- |"]
    lines += [f"| {_cell(e['text'])} | {_cell(e['target_new'])} | {_cell(e['target_true'] or '')} | {e['batch']} |"
              for e in edits[:CARD_ROWS]]
    if len(edits) > CARD_ROWS:
        lines += ["", f"… and {len(edits) - CARD_ROWS} more in `{EDITS_FILE}`."]
    return "\n".join(lines) + "\n"


# ---- helpers ---------------------------------------------------------------------------------


def _protected(project: Project, base_source: str) -> dict[str, Path]:
    places = {"the base model": base_model_path(base_source), "the project": project.folder}
    if project.meta.base_model_source and project.meta.base_model_source != base_source:
        places["the project's base model"] = base_model_path(project.meta.base_model_source)
    return places


def _require_space(loaded: LoadedModel, folder: Path) -> None:
    """Refuse at once, rather than after minutes of writing, a disk the weights cannot fit on."""
    needed = int(sum(p.numel() * p.element_size() for p in loaded.model.parameters()) * SPACE_MARGIN)
    parent = Path(folder).expanduser().resolve().parent
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise OutputFileError(
            f"cannot export into {folder}: the model needs about {_size(needed)} and {parent} has "
            f"{_size(free)} free; free some space or choose another disk"
        )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _count(n: int, noun: str) -> str:
    plural = "es" if noun.endswith("ch") else "s"
    return f"{n} {noun}{'' if n == 1 else plural}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
