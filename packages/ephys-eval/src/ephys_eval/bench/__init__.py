"""The versioned forecasting benchmark behind ``ephys bench``.

:mod:`~ephys_eval.bench.protocol` fixes ``ephys-forecast/4`` and its budgets,
:mod:`~ephys_eval.bench.runner` runs it, :mod:`~ephys_eval.bench.leaderboard` writes the
leaderboard.
"""
