"""Observation encoders: cameras (CNN or pretrained EfficientNet-Lite0), tactile grids, low-dim."""
