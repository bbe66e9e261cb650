"""`nse export`: write a project's edited model as a Hugging Face folder with its edits.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from nse_engine.cli.models import add_model_options
from nse_engine.cli.progress_bar import progress_bar_control


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a project's edited model as a Hugging Face folder, with edits.json and a model card",
        description="Write the project's edited model (safetensors, tokenizer, edits.json listing every edit in "
                    "effect, README.md model card) into FOLDER. FOLDER must be new or empty, and may not be, "
                    "hold or lie inside the base model's folder or a project folder; the folder appears only "
                    "once everything is written. A project with no edit in effect is refused unless --unedited.",
    )
    p.add_argument("--project", required=True, type=Path, help="project folder (opened read-only)")
    p.add_argument("--out", required=True, type=Path, metavar="FOLDER", help="a new or empty folder to write")
    p.add_argument("--model", default=None,
                   help="the project's base model (default: the one its log records); model folder, .gguf file, "
                        "or 'default'")
    p.add_argument("--unedited", action="store_true",
                   help="export even when no edit is in effect (the base model unchanged)")
    add_model_options(p)
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from nse_engine.errors import ProjectError
    from nse_engine.model_export import export_project, plan_export
    from nse_engine.store import Project

    with Project.open(args.project, read_only=True) as project:
        source = args.model or project.meta.base_model_source
        if source is None:
            raise ProjectError(f"{args.project} records no base model yet; name it with --model")
        plan = plan_export(project, args.out, source, replace=False)  # before the model loads: fail fast
    if not plan.active_edits and not args.unedited:
        raise ProjectError(f"nothing is edited in {args.project} (no edit is in effect), so the export would be "
                           "the base model unchanged; pass --unedited to export it anyway")

    from nse_engine.model.loading import load_model

    control = progress_bar_control()
    loaded = load_model(source, args.device, args.dtype, args.trust_remote_code, control, args.device_map)
    count = export_project(loaded, args.project, args.out, control, allow_unedited=args.unedited)
    if count:
        print(f"exported the edited model of {args.project} to {args.out}: {count} edit{'' if count == 1 else 's'} "
              "in effect, listed in edits.json")
    else:
        print(f"exported the base model unchanged to {args.out} (nothing is edited in {args.project})")
    return 0
