"""The precisions the statistics pass may multiply in (torch-free: the settings and the app read it)."""

# "float32": every product in float32. "bfloat16": the forward pass under bf16 autocast and each
# kᵀk in bf16 with float32 sums; on bf16 matrix units (AMX, GPUs) 2.3 × faster on SmolLM2, C within
# 0.6 % of float32's, thirty times less than the sampling noise (research/stats_precision.py).
STATS_PRECISIONS = ("float32", "bfloat16")
