"""Key statistics: the second moment E[k kᵀ] of each edited layer's MLP keys, over general text, cached."""
