"""Multi-run experiments: regimes, objective studies, scaling sweeps and their reports."""
