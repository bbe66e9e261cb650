"""NSE: neuron-level sequential editing of the MLP output projections of a few layers."""
