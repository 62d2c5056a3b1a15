"""Pick-language expert: the lift expert aimed at the cube the instruction names."""

from robot_learning.sim.experts.lift import PickExpert


class PickNamedExpert(PickExpert):
    """Reads the named cube's pose (``object_pos``/``object_quat`` of the privileged state)."""
