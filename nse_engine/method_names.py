"""The editing methods a project can be created with, by key and by display name.

A bottom-layer module (no torch, no transformers): the CLI parses `--method` with it before
anything heavy is imported, and the app shows the names.
"""

METHODS = ("nse", "memit", "alphaedit")
METHOD_NAMES = {"nse": "NSE", "memit": "MEMIT", "alphaedit": "AlphaEdit"}
