"""One-off diagnostics behind the derived settings and the research log (docs/research-log.md).

Not part of the product: run from the repository root as `python -m research.<script>`; each
writes its JSON, with commit, command and date, to research/results/.
"""
