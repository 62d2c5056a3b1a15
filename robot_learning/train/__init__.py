"""Supervised training of policies from episode stores: recipes, the loop, checkpoints, DDP."""
