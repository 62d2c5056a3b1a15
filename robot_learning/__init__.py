"""robot_learning: the learning core (datasets, simulation, policies, training, serving).

This package holds no hardware code and never imports rclpy; drivers live in ``drivers``.
"""

__version__ = "0.1.0"
