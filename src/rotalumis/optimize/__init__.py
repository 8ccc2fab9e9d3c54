"""L3: gradient-based optimization of simulator parameters (issue 7)."""
