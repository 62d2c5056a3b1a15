"""``python -m robot_learning.cli``: the same as the ``robot-learning`` console script."""

import sys

from robot_learning.cli.main import main

sys.exit(main())
