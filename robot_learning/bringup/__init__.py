"""``robot-learning bringup``: start a ROS 2 launch file's processes without ``ros2 launch``."""
