"""ROS 2 nodes for robot_learning: thin adapters between topics and the drivers / serving code."""
