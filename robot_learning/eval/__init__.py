"""Evaluation: rollouts, reports, plots and videos."""
