"""The gripper's entry of an action: a binary open/close with hysteresis, sent on change.

Why binary: franka_gripper's actions are slow and blocking (robots/franka_hand.py); a stream of
widths would queue behind each other. The policy's last action entry g in [-1, 1] closes the
hand when it rises above `hysteresis` and opens it when it falls below -`hysteresis`; in
between the hand keeps what it was told, so a noisy g near zero never chatters. Closing is a
Grasp (width 0, `force`, with an outer epsilon that accepts any object the hand can hold, so
the force is kept up whatever the object's size: franka_gripper's grasp succeeds, and keeps
squeezing, only inside width - epsilon.inner < d < width + epsilon.outer); opening is a Move to
`open_width`. A command leaves only on a change (`GripperSwitch.update`); the training env and
the serving loop use this one switch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rl_control.contract import sections
from rl_control.robots.franka_hand import GRASP, HAND, MOVE, GripperCommand


@dataclass(frozen=True)
class GripperSpec:
    """policy.yaml `action.gripper`: the switch and the two commands it sends."""

    hysteresis: float = 0.3
    open_width: float = HAND.max_width
    speed: float = HAND.max_speed
    force: float = 20.0
    epsilon_inner: float = 0.005
    epsilon_outer: float = HAND.max_width

    def __post_init__(self) -> None:
        if not 0.0 <= self.hysteresis < 1.0:
            raise ValueError(f'action.gripper.hysteresis must be in [0, 1), got '
                             f'{self.hysteresis!r}')
        self.close_command()
        self.open_command()  # both valid commands of the hand, or an error naming the field

    @classmethod
    def from_yaml(cls, d: Mapping[str, Any] | None) -> GripperSpec:
        """Defaults overridden by `d`; unknown keys are an error naming them."""
        return cls(**sections.floats_from_dict(cls, d, 'action.gripper'))

    def to_yaml(self) -> dict[str, float]:
        """Plain floats for policy.yaml."""
        return {k: float(v) for k, v in asdict(self).items()}

    def close_command(self) -> GripperCommand:
        """Grasp: close at `speed` and squeeze with `force` whatever the object's width."""
        return GripperCommand(GRASP, 0.0, self.speed, self.force, self.epsilon_inner,
                              self.epsilon_outer)

    def open_command(self) -> GripperCommand:
        """Move to `open_width` at `speed`."""
        return GripperCommand(MOVE, self.open_width, self.speed)


class GripperSwitch:
    """The hysteresis switch: `update(g)` is the command to send now (None: no change)."""

    def __init__(self, spec: GripperSpec, closed: bool = False) -> None:
        self.spec = spec
        self.closed = closed

    def update(self, g: float) -> GripperCommand | None:
        """The command for the gripper entry `g`, only when it changes the hand's state."""
        h = self.spec.hysteresis
        if not self.closed and g > h:
            self.closed = True
            return self.spec.close_command()
        if self.closed and g < -h:
            self.closed = False
            return self.spec.open_command()
        return None

    @property
    def value(self) -> float:
        """The switch as an observation-ready number: 1 closed, -1 open."""
        return 1.0 if self.closed else -1.0
