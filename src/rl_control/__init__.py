"""rl_control: actor-critic RL for robot arms, trained in simulation, served over ROS 2."""

__version__ = '0.1.0'
