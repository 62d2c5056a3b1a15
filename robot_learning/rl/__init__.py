"""Residual reinforcement learning on top of frozen chunked policies (ResiP / ResFiT style)."""
