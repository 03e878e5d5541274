"""forward_command_controller (ros2_controllers HEAD) as franka_ros2 runs it, in Python.

Port of ros2_controllers HEAD (94e74de35, 6.9.0) forward_command_controller/src/
forward_controllers_base.cpp, used for `velocity_controller` / effort / position forward
controllers on franka_hardware:
- The subscription callback DROPS a message containing a non-finite value ("Non-finite value
  received. Dropping message") and otherwise stores it as the newest command.
- `update` takes the newest command and writes it to the command interfaces, every cycle, with
  NO timeout: a command is held until another arrives (ros2_controllers issue #95, "Forward
  command controllers safety timeout", still open at HEAD).
- A command of the wrong length is stored, but `update` returns ERROR ("command size (%zu) does
  not match number of interfaces (%zu)") without writing, so the interfaces keep the last values
  written: never partly applied. (What the controller manager then does with ERROR is
  ros2_control's business, not mirrored here; the emulation keeps the last written values.)
- `on_activate` resets the held command to NaN = "no command received yet": nothing is written,
  and franka_hardware's perform_command_mode_switch zero-fills the velocity / effort command
  (franka_ros2 franka_hardware_interface.cpp), so after (re)activation the robot gets 0 until a
  new message arrives. The position command is initialised to q_d on the first read (same file,
  initializePositionCommands), so a position forward controller holds the current position.
"""
from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import numpy as np


class ForwardCommandController:
    """Hold-last-command controller over `n` command interfaces."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.dropped: list[tuple[float, str]] = []
        self.rejected: list[tuple[float, str]] = []  # validation refusals: none here
        self.errors = 0
        self.last_error: str | None = None
        self.activate()

    def activate(self, q: Any = None, qd: Any = None) -> None:
        """on_activate: the held command becomes NaN ("no command received yet").

        (`q`, `qd`: the measured state, which a forward controller does not read.)
        """
        self._buffer: list[float] | None = None
        self._commands: list[float] = []

    def on_message(self, data: Sequence[float], now: float) -> str | None:
        """Subscription callback at `now` [s]: None if stored, else the reason it was dropped."""
        values = [float(v) for v in data]
        if not all(math.isfinite(v) for v in values):
            reason = 'Non-finite value received. Dropping message'
            self.dropped.append((now, reason))
            return reason
        self._buffer = values
        return None

    def update(self, time: int = 0, period: int = 0, q: Any = None, qd: Any = None
               ) -> np.ndarray | None:
        """One cycle: the values written, or None when nothing is written this cycle.

        (The cycle's time, period and measured state are not read by a forward controller.)
        """
        if self._buffer is not None:
            self._commands = self._buffer
        if all(math.isnan(v) for v in self._commands):      # also true for "never received"
            return None
        if len(self._commands) != self.n:
            self.errors += 1
            self.last_error = (f'command size ({len(self._commands)}) does not match number of '
                               f'interfaces ({self.n})')
            return None
        return np.array(self._commands, dtype=np.float64)
