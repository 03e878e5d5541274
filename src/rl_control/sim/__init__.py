"""Robots and tasks: env factory, Panda kinematics, the observation/action contract. No ROS."""
