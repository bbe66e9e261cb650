"""The edit log: a project's facts, batches, evaluations and chats in SQLite, and fact import."""

from nse_engine.fact_files.validation import (
    FactProblem,
    InvalidFactError,
    TokenLimit,
    build_fact,
    fact_from_fields,
)
from nse_engine.store.fact_import import ImportOptions
from nse_engine.store.import_report import ImportReport
from nse_engine.store.project import Project
from nse_engine.store.records import (
    Batch,
    BatchMetrics,
    Chat,
    Evaluation,
    Fact,
    FactEvaluation,
    FileRow,
    StateFile,
    WriteState,
)

__all__ = [
    "Batch",
    "BatchMetrics",
    "Chat",
    "Evaluation",
    "Fact",
    "FactEvaluation",
    "FactProblem",
    "FileRow",
    "ImportOptions",
    "ImportReport",
    "InvalidFactError",
    "Project",
    "StateFile",
    "TokenLimit",
    "WriteState",
    "build_fact",
    "fact_from_fields",
]
