"""QoS profiles of this package's topics, in one place so publishers and subscribers agree.

Joint states are sensor data (best effort, keep last): a late sample is worthless and must never
queue behind newer ones. Commands are reliable with depth 1: the controller should get the
newest command and never a backlog. Goals and episode results are reliable and volatile so that
`ros2 topic pub` / `ros2 topic echo` with default settings interoperate with them.
"""
from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR: QoSProfile = qos_profile_sensor_data

COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)

# A controller's side of COMMAND: deeper than the publisher's depth 1, so that while sim_robot
# steps a batch (up to 0.1 s of a 1 kHz stream) later commands do not overwrite earlier ones in
# the reader's cache (a controller's subscription thread takes each one as it comes).
COMMAND_READER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)

GOAL = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                  reliability=ReliabilityPolicy.RELIABLE,
                  durability=DurabilityPolicy.VOLATILE)

# Results must not be lost while an evaluator is busy: a deeper reliable queue.
RESULTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)

DIAGNOSTICS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)

# Gripper commands are sent on change only: each one matters (none may be dropped), and a
# backlog of them is short.
GRIPPER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
