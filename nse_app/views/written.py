"""What the model wrote after each fact's prompt (and, for a chat model, replied to its chat
question) when its batch ended: whether the fact held, the texts with the new object highlighted,
and the result panel shown after a run, which offers to retry the facts that did not hold."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from nse_engine.answers import answer_span, says
from nse_engine.store.log_rows import LogRow, held_count

from nse_app.session import Session
from nse_app.views.wiring import push_button

STATUS_COLORS = {"applied": "#1b7f3b", "failed": "#b3261e", "undone": "#7a7a7a", "queued": "#1f5fa8"}
HELD_COLOR, NOT_HELD_COLOR = STATUS_COLORS["applied"], STATUS_COLORS["failed"]
DISAGREE_COLOR = "#b86e00"  # amber: the completion and the chat reply disagree


def verdict_color(row: LogRow) -> str:
    """Green held, amber where completion and chat disagree, red where neither says the new object."""
    return DISAGREE_COLOR if row.disagrees else NOT_HELD_COLOR if row.held is False else HELD_COLOR


def highlight_object(text: str, target: str, at_start: bool = False) -> str:
    """`text` as escaped rich text, with the first whole-word mention of `target` (any case) in bold
    colour; with `at_start` only where the text starts with it, as a completion holds only then
    ("London, not Paris" does not say Paris: green there would contradict the red verdict)."""
    span = answer_span(text, target)
    if span is None or (at_start and not says(text, target)):
        return html.escape(text)
    at, end = span
    return (f"{html.escape(text[:at])}<b style='color:{HELD_COLOR}'>{html.escape(text[at:end])}</b>"
            f"{html.escape(text[end:])}")


def written_html(row: LogRow) -> str:
    """The fact's prompt and, in italics, what the model went on with (a chat model: "completion: …
    · chat: …", both texts), then whether it held, in amber where the two disagree."""
    if row.continuation is None:
        return ""
    target = row.request.target_new
    completion = highlight_object(row.continuation, target, at_start=True)
    wrote = f"{html.escape(row.request.text)}<i>{completion}</i>"
    if row.chat_reply is not None:
        wrote = (f"{html.escape(row.request.text)} — completion: <i>{completion}</i>"
                 f" · chat: <i>{highlight_object(row.chat_reply, target)}</i>")
    return (f"#{row.id} {wrote} — <span style='color:{verdict_color(row)}'>{row.verdict}</span>"
            + ("" if row.held else f" (wanted <b>{html.escape(target)}</b>)"))


class BatchResult(QGroupBox):
    """The facts of the last run, each with what the model wrote, and Retry for those that did not hold."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Last run: what the model writes now", parent)
        self._session = session
        self.rows: list[LogRow] = []
        self.batch_ids: list[int] = []
        self.summary = QLabel()
        self.facts = QTextBrowser()
        self.facts.setMaximumHeight(140)
        self.retry_button = push_button("Retry facts that did not hold", self.retry,
                                        tooltip="Queue them again, so that the next run edits them again")
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.facts)
        self.show_rows([], [])

    def show_rows(self, batch_ids: list[int], rows: list[LogRow]) -> None:
        """Show `rows`, the facts of `batch_ids`; hidden while there is nothing checked to show."""
        self.batch_ids, self.rows = batch_ids, rows
        count = held_count(rows)
        self.summary.setText(f"Batch{'es' if len(batch_ids) > 1 else ''} {', '.join(map(str, batch_ids))}: {count}.")
        self.facts.setHtml("<br>".join(text for text in map(written_html, rows) if text))
        self.retry_button.setVisible(any(r.not_held for r in rows))
        self.setVisible(count.checked > 0)

    def retry(self) -> None:
        self._session.start(self._retry())

    async def _retry(self) -> None:
        await self._session.requeue_not_held(self.batch_ids)
        self.retry_button.hide()
