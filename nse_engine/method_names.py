"""The editing methods a project can be created with, by key and by display name.

A bottom-layer module (no torch, no transformers): the CLI parses `--method` with it before
anything heavy is imported, and the app shows the names.
"""

METHODS = ("nse", "memit", "alphaedit")
METHOD_NAMES = {"nse": "NSE", "memit": "MEMIT", "alphaedit": "AlphaEdit"}
SWITCH_NAMES = {"norm_anchoring": "NAS", "encore": "ENCORE"}  # boolean settings usable with any method


def method_label(method: str | None, switches: dict[str, bool]) -> str:
    """How a project edits, as one short label: "AlphaEdit + NAS" (None: no method chosen yet)."""
    name = METHOD_NAMES.get(method or "", "method not chosen yet")
    on = [SWITCH_NAMES[key] for key in SWITCH_NAMES if switches.get(key)]
    return " + ".join([name, *on])


def method_change_refused(known: str, asked: str, project: str = "this project") -> str:
    """The one message for asking a project to change its method. A project's method is fixed when it
    is created: its states and batches are made with it, so another method needs a new project."""
    return (f"{project} edits with {METHOD_NAMES.get(known, known)}; the method cannot change within a project: "
            f"create a new project to edit with {METHOD_NAMES.get(asked, asked)}")
