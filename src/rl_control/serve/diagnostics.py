"""What the policy server reports on /diagnostics, with the levels diagnostic_updater would use.

ERROR: the arm cannot be served (e-stop latched, a policy joint missing from the joint states,
joint states no real arm can be in, an internal error, another publisher on the command topic,
a bundle that failed to configure). WARN: serving is degraded or stopped for
a reason that can clear by itself (inactive, stale or bad inputs, no or refused goal, a control
loop running below 90 % of its target rate, plans starting late). OK: serving or holding a goal.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from rl_control.serve.sources import slow_source

OK, WARN, ERROR = 0, 1, 2
ERROR_REASONS = ('estop', 'missing_joint', 'duplicate_joints', 'implausible_state',
                 'internal_error')
RATE_WARN_FRACTION = 0.9


class LatencyStats:
    """Windowed and long-run samples (seconds); percentiles in milliseconds."""

    def __init__(self, keep: int = 10000) -> None:
        self.window: list[float] = []
        self.total: deque[float] = deque(maxlen=keep)

    def add(self, dt: float) -> None:
        """Record one sample."""
        self.window.append(dt)
        self.total.append(dt)

    def take_window(self) -> tuple[float, float]:
        """(p50, p99) of the window in ms, then start a new window."""
        out = percentiles_ms(self.window)
        self.window = []
        return out


def percentiles_ms(samples: Any) -> tuple[float, float]:
    """(p50, p99) in milliseconds, NaN when empty."""
    if not len(samples):
        return float('nan'), float('nan')
    p50, p99 = np.percentile(np.fromiter(samples, float), [50, 99])
    return float(p50 * 1e3), float(p99 * 1e3)


def level_and_message(active: bool, reason: str, rate_hz: float, target_hz: float,
                      detail: str | None = None) -> tuple[int, str]:
    """The diagnostic level and one-line message for the server's condition."""
    if reason in ERROR_REASONS:
        return ERROR, f'stopped: {reason}' + (f' ({detail})' if detail else '')
    if not active:
        return WARN, 'inactive'
    if reason != 'ok':
        return WARN, f'braking/holding: {reason}' + (f' ({detail})' if detail else '')
    if target_hz > 0 and rate_hz < RATE_WARN_FRACTION * target_hz:
        return WARN, f'control loop at {rate_hz:.1f} Hz, below 90 % of {target_hz:.1f} Hz'
    return OK, 'serving'


def report(loop: Any, active: bool, configure_error: str, robot: str, latency: LatencyStats,
           now: float, wall: float) -> tuple[int, str, str, dict[str, Any]]:
    """(level, message, hardware_id, values) of the server's /diagnostics status.

    hardware_id names the robot profile served, not the bundle (that is a value).
    """
    values: dict[str, Any] = {'active': active}
    if loop is None:
        level = ERROR if configure_error else WARN
        message = f'configure failed: {configure_error}' if configure_error else 'unconfigured'
        return level, message, robot, values
    values.update(loop.values(now))
    rate_hz = loop.take_rate(wall)
    p50, p99 = latency.take_window()
    t50, t99 = percentiles_ms(latency.total)
    values.update({'rate_hz': rate_hz, 'latency_ms_p50': p50, 'latency_ms_p99': p99,
                   'latency_ms_p50_total': t50, 'latency_ms_p99_total': t99,
                   'latency_samples_total': len(latency.total)})
    detail = loop.cache.last_error if 'joint' in loop.reason or \
        loop.reason == 'implausible_state' else None
    if loop.reason == 'internal_error':
        detail = loop.failure
    elif detail is None:
        detail = loop.task_io.detail(loop.reason)  # object pose, finger joints
    level, message = level_and_message(active, loop.reason, rate_hz, 1.0 / loop.tick_s, detail)
    return level, message, loop.profile.name, values


def server_status(loop: Any, active: bool, configure_error: str, settings: Any,
                  latency: LatencyStats, now: float, wall: float, bundle: str, conflict: str,
                  recorder: Any, state_rate: tuple[float, str] | None
                  ) -> tuple[int, str, str, dict[str, Any]]:
    """The policy server's whole status: `report`, a command-topic conflict, `bring_up`.

    `state_rate`: (joint states per second, their topic) once configured, else None.
    """
    level, message, hardware, values = report(loop, active, configure_error, settings.robot,
                                              latency, now, wall)
    values.update(bundle=bundle, late_messages=0 if loop is None else loop.late,
                  command_conflict=conflict)
    if conflict and conflict not in message:
        level, message = ERROR, f'{message}: {conflict}'
    slow = None if state_rate is None or settings.trigger == 'state' else slow_source(
        state_rate[0], settings.min_state_rate_hz, state_rate[1])
    return (*bring_up(level, message, values, settings.shadow, recorder, slow), hardware,
            values)


def bring_up(level: int, message: str, values: dict[str, Any], shadow: bool,
             recorder: Any, slow_source: str | None = None) -> tuple[int, str]:
    """Shadow mode, recording and a slow joint-state source: an operator must see them.

    `recorder` has `.bag.messages`, `.dropped` and `.error` (ros/recorder.py), or is None (not
    recording). A recording that failed (disk full) or dropped messages (a writer behind) is
    WARN: serving goes on, the record is incomplete. `slow_source` (serve/sources.py) is WARN:
    the server acts on states older than it knows.
    """
    if slow_source is not None:
        level, message = max(level, WARN), f'{message}; {slow_source}'
    values['shadow'] = shadow
    if shadow:
        message = f'SHADOW (commands on ~/shadow_command only): {message}'
    if recorder is not None:
        values['recorded'] = recorder.bag.messages
        values['recording_dropped'] = recorder.dropped
        if recorder.dropped:
            level = max(level, WARN)
            message = f'{message}; recording dropped {recorder.dropped} messages'
        if recorder.error:
            level = max(level, WARN)
            message = f'{message}; recording stopped: {recorder.error}'
    return level, message
