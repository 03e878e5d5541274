"""The command shaper's settings (`ShaperConfig`), recorded in policy.yaml under `shaper:`.

Kept apart from shaper.py (the planner) so both stay short; shaper.py re-exports everything.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any

from rl_control.contract import sections

GRID_S = 1e-3  # the robot's control cycle: plan starts and samples lie on this grid


class ShaperError(ValueError):
    """Settings or inputs the shaper cannot work with; the message names the field."""


@dataclass(frozen=True)
class ShaperConfig:
    """How the shaper plans; recorded in policy.yaml (`shaper:`) so serving matches training.

    The fractions scale the profile's limits: planning below the limits leaves room for the
    controller's spline interpolation between waypoints (a quintic through samples of a
    bang-bang-jerk profile overshoots the planned jerk) and for finite-difference noise.
    A stop (`Shaper.brake`) plans closer to the limits (`brake_*`), but not at them: the
    controller's quintic overshoots a stop planned at 100 % (e-stops at random times through
    the JTC on the MuJoCo arm raise reflexes there and none at these defaults). The tails of
    running plans keep the tracking fractions: they are the motion the policy was trained on.
    """

    period_s: float = 0.04
    lead_s: float = 0.02
    sample_s: float = 0.004
    velocity_fraction: float = 0.9
    acceleration_fraction: float = 0.7
    jerk_fraction: float = 0.4
    position_margin: float = 0.05
    brake_acceleration_fraction: float = 0.9
    brake_jerk_fraction: float = 0.7

    def __post_init__(self) -> None:
        for name in ('period_s', 'sample_s'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ShaperError(f'shaper.{name} must be > 0, got {value!r}')
        for name in ('period_s', 'lead_s', 'sample_s'):
            steps = getattr(self, name) / GRID_S
            if abs(steps - round(steps)) > 1e-6 or steps < 0:
                raise ShaperError(f'shaper.{name} must be a whole number of milliseconds, got '
                                  f'{getattr(self, name)!r}')
        if round(self.period_s / GRID_S) % round(self.sample_s / GRID_S):
            raise ShaperError(f'shaper.period_s ({self.period_s}) must be a multiple of '
                              f'shaper.sample_s ({self.sample_s})')
        for name in ('velocity_fraction', 'acceleration_fraction', 'jerk_fraction',
                     'brake_acceleration_fraction', 'brake_jerk_fraction'):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ShaperError(f'shaper.{name} must be in (0, 1], got {value!r}')
        if not 0.0 <= self.position_margin < 0.5:
            raise ShaperError(f'shaper.position_margin must be in [0, 0.5) rad, got '
                              f'{self.position_margin!r}')

    def to_yaml(self) -> dict[str, float]:
        """The policy.yaml `shaper:` section."""
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}

    @classmethod
    def from_yaml(cls, d: dict[str, Any] | None, period_s: float | None = None
                  ) -> ShaperConfig:
        """Parse a `shaper:` section (None: defaults, with the bundle's control period)."""
        d = sections.checked(cls, d, 'shaper', ShaperError)
        if period_s is not None:
            d.setdefault('period_s', period_s)
        try:
            return cls(**{k: float(v) for k, v in d.items()})
        except (TypeError, ValueError) as exc:
            raise ShaperError(f'shaper: {exc}') from None
