"""Loading local causal LMs and finding the modules NSE edits."""
