"""``make demo``: collect in sim, train, evaluate, run through ROS 2, report; resumable."""
