"""What every screen wires up the same way: a button or menu action to the slot it runs, and a
view to the result of the worker job that refreshes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QPushButton

if TYPE_CHECKING:
    from nse_app.session import Session


def push_button(text: str, slot: Callable[[], object], tooltip: str = "", name: str = "") -> QPushButton:
    """A button that runs `slot` when clicked; `name` is its object name (the style sheet's "primary")."""
    button = QPushButton(text)
    if name:
        button.setObjectName(name)
    if tooltip:
        button.setToolTip(tooltip)
    button.clicked.connect(slot)
    return button


def menu_action(text: str, slot: Callable[[], object], parent: QObject) -> QAction:
    """A context-menu or shortcut action that runs `slot`."""
    action = QAction(text, parent)
    action.triggered.connect(slot)
    return action


def show_job_result(session: Session, fn: Callable[..., Any], show: Callable[[Any], None], **kwargs: Any) -> None:
    """Run `fn` on the worker (a short job) and hand its result to `show`: how a view refreshes itself."""

    async def run() -> None:
        show(await session.job(fn, **kwargs))

    session.start(run())
