"""Evaluating edits: CounterFact-style scores per fact, fluency, and the retention sample."""

from nse_engine.evaluation.counterfact import EvalSummary, FactScores, evaluate, prefers, says
from nse_engine.evaluation.fluency import FLUENCY_PROMPTS, fluency_score, mean_ngram_entropy, ngram_entropy
from nse_engine.evaluation.retention import DEFAULT_RETENTION_SAMPLE, retention_sample
from nse_engine.evaluation.scoring import TargetScore, score_targets
from nse_engine.model.generation import greedy_continuations

__all__ = [
    "DEFAULT_RETENTION_SAMPLE",
    "EvalSummary",
    "FLUENCY_PROMPTS",
    "FactScores",
    "TargetScore",
    "evaluate",
    "fluency_score",
    "greedy_continuations",
    "mean_ngram_entropy",
    "ngram_entropy",
    "prefers",
    "retention_sample",
    "says",
    "score_targets",
]
