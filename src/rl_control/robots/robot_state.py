"""The simulated arm's own state, as a Franka stack reports it (pure: dicts, no ROS).

`franka_state(arm)` gives the fields of franka_msgs/msg/FrankaRobotState that say whether the
robot moves and why not (FrankaRobotState.msg and Errors.msg, franka_ros2 v2.5.0), which
franka_robot_state_broadcaster publishes on `franka_robot_state_broadcaster/robot_state`:
- `robot_mode`: ROBOT_MODE_IDLE 1 at rest and ready, MOVE 2 while a controller commands it,
  REFLEX 4 after a violation (libfranka RobotMode::kReflex) until error recovery;
- `current_errors`: the libfranka errors set now ({name: bool}, every Errors.msg field; the
  arm's reflex names are libfranka's, robots/franka_limits.py); cleared by the recovery;
- `last_motion_errors`: the errors that stopped the last motion; kept after the recovery.
`report(arm_state, ...)` is sim_robot's `~/robot_state` JSON (this package's own, richer:
counters, the commanded reference).
"""
from __future__ import annotations

from typing import Any

import numpy as np

ERRORS = (
    'joint_position_limits_violation', 'cartesian_position_limits_violation',
    'self_collision_avoidance_violation', 'joint_velocity_violation',
    'cartesian_velocity_violation', 'force_control_safety_violation', 'joint_reflex',
    'cartesian_reflex', 'max_goal_pose_deviation_violation',
    'max_path_pose_deviation_violation', 'cartesian_velocity_profile_safety_violation',
    'joint_position_motion_generator_start_pose_invalid',
    'joint_motion_generator_position_limits_violation',
    'joint_motion_generator_velocity_limits_violation',
    'joint_motion_generator_velocity_discontinuity',
    'joint_motion_generator_acceleration_discontinuity',
    'cartesian_position_motion_generator_start_pose_invalid',
    'cartesian_motion_generator_elbow_limit_violation',
    'cartesian_motion_generator_velocity_limits_violation',
    'cartesian_motion_generator_velocity_discontinuity',
    'cartesian_motion_generator_acceleration_discontinuity',
    'cartesian_motion_generator_elbow_sign_inconsistent',
    'cartesian_motion_generator_start_elbow_invalid',
    'cartesian_motion_generator_joint_position_limits_violation',
    'cartesian_motion_generator_joint_velocity_limits_violation',
    'cartesian_motion_generator_joint_velocity_discontinuity',
    'cartesian_motion_generator_joint_acceleration_discontinuity',
    'cartesian_position_motion_generator_invalid_frame',
    'force_controller_desired_force_tolerance_violation', 'controller_torque_discontinuity',
    'start_elbow_sign_inconsistent', 'communication_constraints_violation',
    'power_limit_violation', 'joint_p2p_insufficient_torque_for_planning',
    'tau_j_range_violation', 'instability_detected')
"""franka_msgs/msg/Errors.msg fields, in order (franka_ros2 v2.5.0)."""
MODES = {'idle': 1, 'move': 2, 'reflex': 4}
"""The arm's modes (robots/franka.py) as FrankaRobotState ROBOT_MODE_* values."""


def franka_state(mode: str, errors: tuple[str, ...], last_motion: tuple[str, ...],
                 t: float) -> dict[str, Any]:
    """The FrankaRobotState fields above as plain values (`time` in seconds)."""
    return {'robot_mode': MODES[mode],
            'current_errors': {e: e in errors for e in ERRORS},
            'last_motion_errors': {e: e in last_motion for e in ERRORS},
            'time': float(t)}


def report(st: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """sim_robot's ~/robot_state JSON from `FrankaArm.state()` and the host's own values."""
    keys = ('mode', 'reflex', 'reflex_time', 'reflex_errors', 'reflex_count', 'rejected',
            'dropped', 'ignored', 'at_rest', 'time')
    out = {k: st[k] for k in keys}
    out['reflex_errors'] = list(out['reflex_errors'])
    out['last_rejection'] = st['rejections'][-1][1] if st['rejections'] else None
    out['max_abs_qd'] = float(np.abs(st['qd']).max())
    out['qd_ref'] = [float(v) for v in st['qd_ref']]  # the commanded reference
    out['qd'] = [float(v) for v in st['qd']]
    out.update(extra)
    return out


def episode_reflex(st: dict[str, Any], reflexes_before: int, start_time: float,
                   log: Any) -> dict[str, Any]:
    """The reflex fields of an episode result (None where no reflex came in the episode)."""
    new = st['reflex_count'] > reflexes_before
    return {'reflex': st['reflex'] if new else None,
            'reflexes': st['reflex_count'] - reflexes_before,
            'reflex_at_s': (round(st['reflex_time'] - start_time, 4)
                            if new and st['reflex_time'] is not None else None),
            'reflex_violation': str(st['reflex_violation']) if new else None,
            'reflex_log': log if new else None}
