"""What a project is fixed to: its base model, its editing method and the settings it was created with."""

from __future__ import annotations

import json
from typing import Any, Mapping

from nse_engine.errors import ProjectError
from nse_engine.method_names import METHODS, method_change_refused
from nse_engine.store import database, schema
from nse_engine.store.log_part import LogPart, reads
from nse_engine.store.storage_errors import storage_errors


class ProjectMeta(LogPart):
    """The `meta` table of a project's log; the first base model and method checked become the project's."""

    @property
    @reads
    def schema_version(self) -> int:
        return schema.applied_version(self._db)

    @property
    @reads
    def base_model_source(self) -> str | None:
        return database.read_meta(self._db, "base_model_source")

    @property
    @reads
    def base_model_fingerprint(self) -> str | None:
        return database.read_meta(self._db, "base_model_fingerprint")

    @property
    @reads
    def created_at(self) -> str:
        return database.read_meta(self._db, "created_at") or ""

    @property
    @reads
    def method(self) -> str | None:
        """The editing method the project was created with (None: not chosen yet, or a project from
        before methods were recorded; its batches say which)."""
        known = database.read_meta(self._db, "method")
        if known is None and self._queries.batches():
            return "nse"  # projects from before the choice existed were all edited with NSE
        return known

    def check_compatible(self, method: str | None) -> None:
        """Refuse a method this project cannot continue with: an unknown one, or another than its own
        (a project's method is fixed once chosen). None asks nothing."""
        if method is None:
            return
        if method not in METHODS:
            raise ProjectError(f"unknown editing method {method!r}; use one of {', '.join(METHODS)}")
        known = self.method
        if known is not None and known != method:
            raise ProjectError(method_change_refused(known, method, str(self.log_path.parent)))

    def choose_method(self, method: str) -> None:
        """`check_compatible`, then record `method` as the project's if it has none yet (when writable)."""
        self.check_compatible(method)
        if not self.read_only and self._recorded("method") is None:
            self._write({"method": method}, "record the editing method")

    @property
    @reads
    def chosen_settings(self) -> dict[str, Any]:
        """The settings the project was created with (NAS, ENCORE), kept for as long as it has no
        editing state; from its first batch on, the state file holds the settings in effect."""
        text = database.read_meta(self._db, "settings")
        return json.loads(text) if text else {}

    def record_chosen_settings(self, settings: Mapping[str, Any]) -> None:
        """Keep a new project's chosen settings, so that reopening it before its first batch keeps them."""
        if not self.read_only:
            self._write({"settings": json.dumps(dict(settings), sort_keys=True)}, "record the project's settings")

    def check_base_model(self, source: str, fingerprint: str) -> None:
        """Refuse a base model other than the project's; the first model checked becomes it (when writable)."""
        known = self.base_model_fingerprint
        if known is None and not self.read_only:
            self._write({"base_model_source": source, "base_model_fingerprint": fingerprint}, "record the base model")
        elif known is not None and known != fingerprint:
            raise ProjectError(
                f"this project edits {self.base_model_source} (fingerprint {known[:12]}…); "
                f"{source} is a different model (fingerprint {fingerprint[:12]}…)"
            )

    @reads
    def _recorded(self, key: str) -> str | None:
        return database.read_meta(self._db, key)

    def _write(self, values: Mapping[str, str], action: str) -> None:
        with storage_errors(self.log_path, action), self._db.atomic():
            for key, value in values.items():
                database.write_meta(self._db, key, value)
