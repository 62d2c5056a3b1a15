"""One module per ``robot-learning dataset`` tool (see :mod:`robot_learning.cli.dataset`)."""
