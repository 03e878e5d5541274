"""The Franka Hand as franka_gripper drives it: slow, blocking Move and Grasp actions.

What a policy meets on a real hand (franka_ros2 franka_gripper, gripper_action_server.cpp, and
libfranka's franka::Gripper it calls):
- two actions that matter, `move(width, speed)` and `grasp(width, speed, force, epsilon)`; each
  is a blocking libfranka call run to its end. A grasp closes at `speed` until the fingers
  stall on something, then squeezes with `force`; it succeeds when the stalled width d lies in
  width - epsilon.inner < d < width + epsilon.outer, and only then keeps the force up (a failed
  grasp stops the fingers). `gripper_action` (control_msgs/GripperCommand, MoveIt's) is a Move
  when opening and a Grasp with `max_effort` when closing, at the node's `default_speed`.
- the width is published at `state_publish_rate` (50 Hz, franka_gripper_node.yaml) as width / 2
  per finger joint.
Limits (`HandLimits`): width 0 to 0.08 m (franka_description hand.xacro: 0.04 m per finger);
speed up to 0.1 m/s of width (franka_gripper_node.yaml `default_speed: 0.1`; frankx's
`Gripper::max_speed`), i.e. 0.05 m/s per finger; grasp force up to 70 N continuous (the Franka
Hand's datasheet: 70 N continuous, 140 N peak).

The model here is the gripper's side of that, pure and clocked by the caller: `command` queues
one action (an action that arrives while another runs starts when it ends, the newest
waiting one wins: a binary open/close sent on change, never a stream); after `latency_s` it
starts; `update(t, width)` says where the finger servo should be and with which force limit,
and finishes the action when it arrives or stalls. robots/hand_cell.py runs it on the MuJoCo
fingers every physics step; sim_robot's hand is the same object.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import json
from typing import Any

MOVE, GRASP = 'move', 'grasp'


@dataclass(frozen=True)
class HandLimits:
    """The hand's limits (module docstring for their sources)."""

    max_width: float = 0.08
    max_speed: float = 0.1
    """Width per second [m/s] (0.05 m/s per finger)."""
    max_force: float = 70.0
    """Continuous grasp force [N]."""
    move_force: float = 70.0
    """The force a Move may push with [N] (a Move is position controlled)."""
    state_rate_hz: float = 50.0
    """franka_gripper's joint_states rate (franka_gripper_node.yaml state_publish_rate)."""


HAND = HandLimits()


@dataclass(frozen=True)
class GripperCommand:
    """One franka_gripper action: a Move or a Grasp (franka_msgs/action/Move, Grasp fields)."""

    action: str
    width: float
    speed: float = HAND.max_speed
    force: float = 0.0
    epsilon_inner: float = 0.005
    epsilon_outer: float = 0.005

    def __post_init__(self) -> None:
        if self.action not in (MOVE, GRASP):
            raise ValueError(f"gripper command action must be 'move' or 'grasp', got "
                             f"{self.action!r}")
        for key in ('width', 'speed', 'force', 'epsilon_inner', 'epsilon_outer'):
            value = getattr(self, key)
            if not isinstance(value, int | float) or value != value or value < 0:
                raise ValueError(f'gripper command {key} must be a number >= 0, got {value!r}')
        if self.width > HAND.max_width + 1e-9:
            raise ValueError(f'gripper command width {self.width} exceeds the hand\'s '
                             f'{HAND.max_width} m')
        if not 0 < self.speed <= HAND.max_speed + 1e-9:
            raise ValueError(f'gripper command speed must be in (0, {HAND.max_speed}] m/s, '
                             f'got {self.speed}')
        if self.force > HAND.max_force + 1e-9:
            raise ValueError(f'gripper command force {self.force} exceeds the hand\'s '
                             f'continuous {HAND.max_force} N')

    def to_json(self) -> str:
        """The topic interface's text (docs/pick_place.md): one JSON object."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GripperCommand:
        """Inverse of to_json; errors name the bad field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'gripper command is not JSON: {exc}') from None
        if not isinstance(data, dict):
            raise ValueError('gripper command must be a JSON object')
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown or 'action' not in data or 'width' not in data:
            raise ValueError(f'gripper command needs action and width; unknown field(s) '
                             f'{unknown}')
        return cls(**data)


@dataclass
class _Running:
    cmd: GripperCommand
    start: float
    target: float  # where the servo is now [m of width]
    stalled_s: float = 0.0


class FrankaHand:
    """The hand's action server and motor (module docstring); times in seconds."""

    STALL_GAP = 0.005
    """Servo ahead of the fingers by this much width [m] = blocked."""
    STALL_S = 0.02
    """Blocked this long = stalled (a grasp then squeezes, a move ends)."""
    ARRIVED = 0.0005
    """A move within this of its width [m] has arrived."""

    def __init__(self, limits: HandLimits = HAND, latency_s: float = 0.05,
                 width: float = HAND.max_width) -> None:
        self.limits = limits
        self.latency_s = float(latency_s)
        self.reset(width)

    def reset(self, width: float) -> None:
        """At rest at `width`, nothing running or waiting, not grasping."""
        self.target = float(width)
        self.force = self.limits.move_force
        self.running: _Running | None = None
        self.waiting: tuple[float, GripperCommand] | None = None
        self.grasped = False
        self.results: list[tuple[str, bool]] = []  # (action, success) of finished actions
        self.commands = 0

    @property
    def busy(self) -> bool:
        """An action is running or waiting."""
        return self.running is not None or self.waiting is not None

    def command(self, t: float, cmd: GripperCommand) -> None:
        """An action arriving at `t`: it starts `latency_s` later, after the running one ends."""
        self.commands += 1
        self.waiting = (t + self.latency_s, cmd)

    def update(self, t: float, width: float, dt: float) -> tuple[float, float]:
        """Advance to `t` with the measured width; (servo width target [m], force limit [N])."""
        if self.running is None and self.waiting is not None and t >= self.waiting[0]:
            _, cmd = self.waiting
            self.waiting = None
            self.running = _Running(cmd, t, float(width))
            self.grasped = False
            self.force = self.limits.move_force
        run = self.running
        if run is None:
            return self.target, self.force
        cmd = run.cmd
        step = cmd.speed * dt
        run.target += max(min(cmd.width - run.target, step), -step)
        blocked = abs(run.target - width) > self.STALL_GAP
        run.stalled_s = run.stalled_s + dt if blocked else 0.0
        self.target = run.target
        if cmd.action == GRASP:
            self.force = cmd.force
            if run.stalled_s >= self.STALL_S or abs(width - cmd.width) < self.ARRIVED:
                ok = cmd.width - cmd.epsilon_inner < width < cmd.width + cmd.epsilon_outer
                self._finish(GRASP, ok)
                self.grasped = ok
                # a successful grasp keeps squeezing; a failed one stops where it is
                self.target = max(cmd.width - 0.01, 0.0) if ok else float(width)
        elif (run.target == cmd.width and abs(width - cmd.width) < self.ARRIVED
              or run.stalled_s >= self.STALL_S):
            # arrived (the servo at the width, the fingers within ARRIVED of it: no jump of
            # the servo at the end) or blocked (stop where the fingers are)
            self._finish(MOVE, abs(width - cmd.width) < 10 * self.ARRIVED)
            self.target = float(width) if run.stalled_s >= self.STALL_S else cmd.width
        return self.target, self.force

    def _finish(self, action: str, ok: bool) -> None:
        self.results.append((action, ok))
        del self.results[:-8]
        self.running = None

    def state_dict(self) -> dict[str, Any]:
        """Everything (exact resume mid-episode)."""
        run = self.running
        return {'target': self.target, 'force': self.force, 'grasped': self.grasped,
                'running': None if run is None else (asdict(run.cmd), run.start, run.target,
                                                     run.stalled_s),
                'waiting': None if self.waiting is None else (self.waiting[0],
                                                              asdict(self.waiting[1])),
                'results': list(self.results), 'commands': self.commands,
                'latency_s': self.latency_s}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.target, self.force, self.grasped = s['target'], s['force'], s['grasped']
        run = s['running']
        self.running = None if run is None else _Running(GripperCommand(**run[0]), *run[1:])
        w = s['waiting']
        self.waiting = None if w is None else (w[0], GripperCommand(**w[1]))
        self.results, self.commands = list(s['results']), s['commands']
        self.latency_s = s['latency_s']
