"""The edit log: a project's facts, batches, evaluations and chats in SQLite, and fact import."""

from nse_engine.store.importing import ImportReport, RejectedRow
from nse_engine.store.project import Project
from nse_engine.store.records import (
    Batch,
    Chat,
    Evaluation,
    Fact,
    FactEvaluation,
    RetentionPoint,
    StateFile,
    WriteState,
)
from nse_engine.store.validation import (
    FactProblem,
    InvalidFactError,
    TokenLimit,
    build_fact,
    fact_from_fields,
)

__all__ = [
    "Batch",
    "Chat",
    "Evaluation",
    "Fact",
    "FactEvaluation",
    "FactProblem",
    "ImportReport",
    "InvalidFactError",
    "Project",
    "RejectedRow",
    "RetentionPoint",
    "StateFile",
    "TokenLimit",
    "WriteState",
    "build_fact",
    "fact_from_fields",
]
