"""Test-session settings shared by every test.

Nodes started by tests talk over a private ROS_DOMAIN_ID, chosen per run, with localhost-only
discovery, so parallel runs on one machine never hear each other.
"""
import os
import random

os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ['ROS_DOMAIN_ID'] = os.environ.get(
    'RL_CONTROL_TEST_DOMAIN_ID', str(random.Random(os.getpid()).randint(10, 100)))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_LOCALHOST_ONLY'] = '1'
