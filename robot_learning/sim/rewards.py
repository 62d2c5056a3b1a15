"""The reward modes every sim task offers (``EnvConfig.reward``, ``rl --reward``).

- ``sparse``: 1 on the success step, else 0.
- ``shaped``: success plus the task's dense shaping (in [0, 1]) on every step. Simple, but it
  pays for loitering near the goal: 0.9 a step for 100 steps beats one success.
- ``progress``: success plus the step's *change* in that shaping, a potential-based shaping
  (Ng, Harada and Russell, 1999). An episode's shaping sums to its last value minus its first,
  so only moving toward the goal pays, and the best policy is the sparse reward's.
"""

REWARDS = ("sparse", "shaped", "progress")
