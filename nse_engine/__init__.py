"""NSE Studio's editing engine: model loading, NSE editing, statistics, edit log. Never imports Qt."""

import os

# Nothing in the engine may reach a model or dataset hub; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
