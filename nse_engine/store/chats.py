"""The chat turns a project keeps, each tied to the batch in effect when it was asked."""

from __future__ import annotations

from nse_engine.store.database import now
from nse_engine.store.log_part import LogPart
from nse_engine.store.records import Chat
from nse_engine.store.storage_errors import storage_errors


class ChatLog(LogPart):
    """Writes the `chats` table (the read queries list it: `LogQueries.chats`)."""

    def record(self, prompt: str, answer: str) -> Chat | None:
        """Keep a chat turn, tied to the batch in effect now (None: the base model).

        A read-only project keeps no chats: None.
        """
        if self.read_only:
            return None
        with storage_errors(self.log_path, "keep the chat"):
            batch = self._queries.newest_batch_in_effect()
            created = now()
            chat_id = self._db.execute(
                "INSERT INTO chats (prompt, answer, batch_id, created_at) VALUES (?, ?, ?, ?)",
                [prompt, answer, batch, created],
            ).lastrowid
        return Chat(chat_id, prompt, answer, batch, created)
