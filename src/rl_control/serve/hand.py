"""The Franka Hand's side of serving (pure): its width in, its open/close command out.

In: the finger joints. franka_gripper publishes the hand's joint state on its own topic at
`state_publish_rate` (50 Hz, width / 2 per finger joint); franka_bringup's
joint_state_publisher merges it into `joint_states` (30 Hz). The server takes the finger
joints by NAME from every joint state it hears (the arm's and the gripper's messages alike),
merged per joint as serve/state.py merges the arm; the policy observes their sum
(contract/terms.py `gripper_width`). A finger state that is missing, older than `stale_s`
(control clock; `backstop_s` on the steady clock) or not a hand's (NaN, or outside the
fingers' travel) brakes the arm, like a bad arm state.

Out: the action's last entry through the same hysteresis switch the training env uses
(contract/gripper.py `GripperSwitch`), so a command leaves only when it changes the hand's
state: a Grasp (close with `force`, any object width inside the epsilons) or a Move to
`open_width`, with the speed of the bundle's `action.gripper` (franka_gripper's Grasp and Move
actions: robots/franka_hand.py). The switch is fed only on ticks where the arm may move
(serve/loop.py): a stale input, an e-stop or a deactivation brakes the arm and leaves the hand
as it was last told; nothing here ever opens the hand by itself. The server starts believing
the hand open, as every training episode starts (`start_grasped` 0): open it before
activation (franka_gripper's `~/move` or `~/homing`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rl_control.contract.gripper import GripperSpec, GripperSwitch
from rl_control.robots.franka_hand import GripperCommand

NO_GRIPPER_STATE = 'no_gripper_state'
STALE_GRIPPER_STATE = 'stale_gripper_state'
BAD_GRIPPER_STATE = 'bad_gripper_state'
GRIPPER_REASONS = (NO_GRIPPER_STATE, STALE_GRIPPER_STATE, BAD_GRIPPER_STATE)
FINGER_SLACK = 0.005
"""A finger position further than this [m] outside [0, open position] is no hand's state."""


class FingerState:
    """The newest valid position of each finger joint and when it came (module docstring)."""

    def __init__(self, names: Sequence[str], open_position: float, stale_s: float,
                 backstop_s: float, period_s: float) -> None:
        self.names = tuple(names)
        self.hi = float(open_position) + FINGER_SLACK
        self.stale_s, self.backstop_s, self.period_s = stale_s, backstop_s, period_s
        n = len(self.names)
        self.q = np.zeros(n)
        self.arrival = np.full(n, -np.inf)
        self.wall = np.full(n, -np.inf)
        self.bad = False
        self.counts: Counter = Counter()
        self.last_error: str | None = None

    def update(self, now: float, wall: float, names: Sequence[str], pos: np.ndarray
               ) -> str | None:
        """Merge the finger joints of one JointState; why refused (None: taken or none)."""
        where = {n: i for i, n in enumerate(names)}
        hit = [(k, where[n]) for k, n in enumerate(self.names) if n in where]
        if not hit or np.shape(pos) != (len(names),):
            return None  # the arm's own message, or one serve/state.py refuses anyway
        p = np.array([float(pos[i]) for _, i in hit])
        if not np.all(np.isfinite(p)) or np.any(p < -FINGER_SLACK) or np.any(p > self.hi):
            self.bad = True
            self.counts[BAD_GRIPPER_STATE] += 1
            self.last_error = (f'finger joint state {np.round(p, 4).tolist()} is not a '
                               f'hand\'s (NaN, or outside [0, {self.hi - FINGER_SLACK:g}] m)')
            return BAD_GRIPPER_STATE
        dst = np.array([k for k, _ in hit])
        self.q[dst], self.arrival[dst], self.wall[dst] = p, now, wall
        self.bad = False
        return None

    def problem(self, now: float, wall: float) -> str | None:
        """Why the width must not be used at `now` (None: every finger is fresh)."""
        if self.bad:
            return BAD_GRIPPER_STATE
        if np.isinf(self.arrival).any():
            missing = [n for n, a in zip(self.names, self.arrival, strict=True)
                       if np.isinf(a)]
            self.last_error = f'no state of the finger joint(s) {missing}'
            return NO_GRIPPER_STATE
        if (now - float(self.arrival.min()) > self.stale_s
                or wall - float(self.wall.min()) > self.backstop_s
                or now < float(self.arrival.max()) - self.period_s - 1e-6):
            return STALE_GRIPPER_STATE
        return None

    @property
    def width(self) -> float:
        """The hand's opening [m]: the sum of the finger positions."""
        return float(self.q.sum())


class HandCommands:
    """The gripper entry -> a franka_gripper command, only on change (module docstring)."""

    def __init__(self, spec: GripperSpec) -> None:
        self.switch = GripperSwitch(spec)
        self.sent: Counter = Counter()

    def update(self, g: float) -> GripperCommand | None:
        """The command for the gripper entry `g` of a tick allowed to move (None: no change)."""
        cmd = self.switch.update(g)
        if cmd is not None:
            self.sent[cmd.action] += 1
        return cmd

    @property
    def value(self) -> float:
        """The last command as the policy observes it (`gripper_command`: 1 closed, -1 open)."""
        return self.switch.value

    def values(self) -> dict[str, Any]:
        """/diagnostics values."""
        return {'gripper_closed': self.switch.closed,
                'gripper_commands': sum(self.sent.values())}
