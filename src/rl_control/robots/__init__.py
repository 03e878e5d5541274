"""Franka-faithful robot models (pure Python, no ROS): limits, reflexes, controllers."""
