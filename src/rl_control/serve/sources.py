"""The joint-state source's rate, measured from the stream (pure).

On an FR3 under franka_bringup (franka.launch.py, franka_ros2 v2.5.0) `joint_states` is
joint_state_publisher's copy at `joint_state_rate` (default 30 Hz), stamped when it republishes;
the controller-rate stream with measurement stamps is `franka/joint_states`
(robots/bringup.py). A server subscribed to the republisher still runs, but acts on states up
to a republish period old, which it cannot see from their stamps: it is said on /diagnostics
(WARN, with the measured rate) when the stream is slower than `min_state_rate_hz`.
"""
from __future__ import annotations

from collections import deque

WINDOW_S = 1.0


class StateRate:
    """Messages per second over the last `window_s` (steady clock)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def add(self, wall: float) -> None:
        """A joint state arrived at `wall`."""
        self._times.append(wall)
        while self._times and self._times[0] < wall - self.window_s:
            self._times.popleft()

    def rate(self, wall: float) -> float | None:
        """The measured rate [Hz] at `wall`; None before a full window of messages."""
        times = self._times
        while times and times[0] < wall - self.window_s:
            times.popleft()
        if len(times) < 2 or times[-1] - times[0] < 0.5 * self.window_s:
            return None
        return (len(times) - 1) / (times[-1] - times[0])


def slow_source(rate: float | None, min_rate_hz: float, topic: str) -> str | None:
    """The WARN text when the source is slower than `min_rate_hz` (None: fast enough / unknown)."""
    if rate is None or min_rate_hz <= 0 or rate >= min_rate_hz:
        return None
    return (f'joint states on {topic} at {rate:.0f} Hz (< {min_rate_hz:g} Hz): a republisher '
            "such as joint_state_publisher? Subscribe to the joint_state_broadcaster's stream "
            '(franka_bringup: franka/joint_states)')
