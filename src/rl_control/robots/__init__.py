"""Robots: profiles and limits, Panda kinematics, the MuJoCo and PyBullet Pandas (no ROS)."""
