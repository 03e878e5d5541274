"""Which joint-state topics a Franka stack publishes, at which rate, stamped how (pure).

franka_bringup's `launch/franka.launch.py` (franka_ros2 v2.5.0, and v3.4.0 the same) wires an
FR3 like this:
- `joint_state_broadcaster` runs in the controller manager at `update_rate` (1000 Hz,
  config/controllers.yaml) and is remapped to `franka/joint_states`: the 7 arm joints, each
  message stamped with the time of its control cycle (the measurement);
- `franka_gripper` publishes the fingers on `franka_gripper/joint_states`;
- `joint_state_publisher` (`source_list: [franka/joint_states, franka_gripper/joint_states]`,
  `rate: joint_state_rate`, default 30) republishes the newest of both on `joint_states`,
  merged, stamped with its own clock when it republishes (joint_state_publisher's
  `header.stamp = now()`), for robot_state_publisher and RViz.
A server on `joint_states` therefore acts on states up to 1/30 s old whose stamps say "now";
one on `franka/joint_states` gets every cycle with its measurement time.

`broadcaster` is the plain ros2_control wiring (the joint_state_broadcaster on `joint_states`,
no republisher): what this package's Panda default keeps (no franka_ros2 release drives a Panda,
see docs/real_robot.md). `auto` picks the robot profile's (`RobotProfile.joint_state_wiring`:
`franka_bringup` for the FR3, `broadcaster` for the Panda).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl_control.robots.profiles import get_profile

TOPOLOGIES = ('auto', 'franka_bringup', 'broadcaster')
JOINT_STATE_RATE_HZ = 30.0
"""franka_bringup franka.launch.py `joint_state_rate` default (v2.5.0)."""


@dataclass(frozen=True)
class JointStateWiring:
    """Topic names (relative) of one robot's joint states; `merged_topic` '' = no republisher."""

    arm_topic: str
    gripper_topic: str
    merged_topic: str
    merged_rate_hz: float


def wiring(topology: str, robot: str, arm_topic: str = '',
           gripper_topic: str = 'franka_gripper/joint_states',
           merged_rate_hz: float = JOINT_STATE_RATE_HZ) -> JointStateWiring:
    """The wiring of `topology` for `robot`; `arm_topic` '' = the topology's broadcaster topic."""
    if topology not in TOPOLOGIES:
        raise ValueError(f'topology must be one of {TOPOLOGIES}, got {topology!r}')
    if topology == 'auto':
        topology = get_profile(robot).joint_state_wiring
    if topology == 'franka_bringup':
        return JointStateWiring(arm_topic or 'franka/joint_states', gripper_topic,
                                'joint_states', merged_rate_hz)
    return JointStateWiring(arm_topic or 'joint_states', gripper_topic, '', merged_rate_hz)


class Republisher:
    """joint_state_publisher over (arm, gripper) sources: the newest of each, merged, at a rate.

    `offer_*` hands it what the sources published (names, q, qd, effort); `due(t)` says whether
    its timer fires at grid time `t` (every 1/rate, on the grid); `merged()` is the message it
    then publishes (arm joints, then fingers), which the host stamps with the time it
    republishes, not with the measurement's.
    """

    def __init__(self, rate_hz: float, dt: float = 1e-3) -> None:
        if rate_hz <= 0:
            raise ValueError(f'republish rate must be > 0, got {rate_hz}')
        self.every = max(1, round(1.0 / (rate_hz * dt)))
        self.dt = dt
        self._arm: tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._grip: tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_k = -1

    def offer_arm(self, names: tuple[str, ...], q: np.ndarray, qd: np.ndarray,
                  tau: np.ndarray) -> None:
        """The broadcaster's newest message."""
        self._arm = (tuple(names), np.array(q), np.array(qd), np.array(tau))

    def offer_gripper(self, names: tuple[str, ...], q: np.ndarray, qd: np.ndarray,
                      effort: np.ndarray) -> None:
        """The gripper's newest message."""
        self._grip = (tuple(names), np.array(q), np.array(qd), np.array(effort))

    def due(self, t: float) -> bool:
        """Whether the republish timer fires at grid time `t` (at most once per timer period)."""
        k = int(round(t / self.dt)) // self.every
        if k == self._last_k or self._arm is None:
            return False
        self._last_k = k
        return True

    def merged(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(names, q, qd, effort) of every source joint, arm first."""
        parts = [p for p in (self._arm, self._grip) if p is not None]
        names = [n for p in parts for n in p[0]]
        return (names, *(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3)))
