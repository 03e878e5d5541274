"""An object tracker as a real cell has one: a camera-rate pose, late and noisy.

A vision tracker (a fiducial or a pose estimator on a camera) publishes the object's pose at its
frame rate, each frame stamped with its capture time and delivered `delay_s` later (exposure,
transfer, inference), with a position and orientation error. `ObjectTracker.measure(t)` is the
newest frame delivered by time `t`: the true pose at that frame's capture time (from the
simulator's pose history) plus that frame's noise (drawn once per frame, so a frame read twice
is the same message). Base frame; orientation as a quaternion x, y, z, w.
"""
from __future__ import annotations

from collections import deque
import math

import numpy as np


class PoseHistory:
    """The true pose over the last `span_s` seconds, one entry per physics step."""

    def __init__(self, span_s: float = 0.5) -> None:
        self.span_s = float(span_s)
        self.times: deque[float] = deque()
        self.poses: deque[np.ndarray] = deque()

    def clear(self) -> None:
        """Forget everything (a new episode)."""
        self.times.clear()
        self.poses.clear()

    def add(self, t: float, pose: np.ndarray) -> None:
        """The pose at time `t` (times increase)."""
        self.times.append(float(t))
        self.poses.append(np.array(pose, np.float64))
        while self.times and self.times[0] < t - self.span_s:
            self.times.popleft()
            self.poses.popleft()

    def at(self, t: float) -> np.ndarray:
        """The newest pose at or before `t` (the oldest kept if `t` is older)."""
        i = len(self.times) - 1
        while i > 0 and self.times[i] > t + 1e-9:
            i -= 1
        return self.poses[i].copy()


def _small_rotation(q: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) `q` turned by the small rotation vector `rotvec` (base frame)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return q
    axis = rotvec / angle
    s = math.sin(angle / 2)
    dx, dy, dz, dw = axis[0] * s, axis[1] * s, axis[2] * s, math.cos(angle / 2)
    x, y, z, w = q
    return np.array([dw * x + dx * w + dy * z - dz * y, dw * y - dx * z + dy * w + dz * x,
                     dw * z + dx * y - dy * x + dz * w, dw * w - dx * x - dy * y - dz * z])


class ObjectTracker:
    """Frames at `rate_hz`, delivered `delay_s` after capture, with Gaussian errors."""

    def __init__(self, rate_hz: float = 30.0, delay_s: float = 0.05,
                 position_noise: float = 0.001, orientation_noise: float = 0.01,
                 rng: np.random.Generator | None = None) -> None:
        if rate_hz <= 0 or delay_s < 0 or position_noise < 0 or orientation_noise < 0:
            raise ValueError('tracker: rate_hz > 0 and delay_s, noises >= 0')
        self.rate_hz, self.delay_s = float(rate_hz), float(delay_s)
        self.position_noise, self.orientation_noise = float(position_noise), float(
            orientation_noise)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._frame: tuple[int, float, np.ndarray] | None = None

    def reset(self) -> None:
        """A new episode: no frame kept."""
        self._frame = None

    def frame_index(self, t: float) -> int:
        """The newest frame delivered by `t` (captured at index / rate_hz)."""
        return math.floor((t - self.delay_s) * self.rate_hz + 1e-9)

    def measure(self, t: float, history: PoseHistory) -> tuple[float, np.ndarray]:
        """(capture time, measured pose) of the newest frame delivered by time `t`."""
        k = self.frame_index(t)
        if self._frame is None or self._frame[0] != k:
            stamp = max(k / self.rate_hz, 0.0)
            pose = history.at(stamp)
            pose[:3] += self.rng.normal(0.0, self.position_noise, 3) if self.position_noise \
                else 0.0
            if self.orientation_noise:
                pose[3:] = _small_rotation(pose[3:], self.rng.normal(
                    0.0, self.orientation_noise, 3))
            self._frame = (k, stamp, pose)
        return self._frame[1], self._frame[2].copy()
