"""FLOP-budgeted search: settings, the shared trial evaluation, Optuna and Ray Tune
backends, MobileNetV3 baselines and the results tables."""
