"""NaN and inf stop a run: in an observation, a reward or a loss, named with the step.

One non-finite observation would make the running normalizer NaN for good, one non-finite
reward or loss the networks; a run that went on would overwrite its last good checkpoint and
bundle with NaN weights. The collectors check what the envs return before anything learns from
it (`check`), the loop checks the losses an update returns (`check_losses`), and the run stops
with one line naming the step and the quantity (`learn.Trainer`), writing nothing more.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class NonFiniteError(RuntimeError):
    """A non-finite quantity; `offset` env steps after the step the loop had counted."""

    def __init__(self, what: str, offset: int = 0) -> None:
        super().__init__(what)
        self.what, self.offset = what, offset


def check(what: str, values: Any, offset: int = 0) -> None:
    """Raise NonFiniteError naming the first non-finite entry of `values` (env, index)."""
    a = np.asarray(values, np.float64)
    if np.all(np.isfinite(a)):
        return
    where = np.argwhere(~np.isfinite(a))[0]
    at = 'env ' + str(int(where[0])) if a.ndim else ''
    if a.ndim > 1:
        at += f', entry {int(where[1])}'
    raise NonFiniteError(f'non-finite {what} ({at}: {a[tuple(where)]})', offset)


def check_losses(metrics: dict[str, float] | None) -> None:
    """Raise NonFiniteError naming the first non-finite value of an update's metrics."""
    for key, value in (metrics or {}).items():
        if not np.isfinite(float(value)):
            raise NonFiniteError(f'non-finite {key} ({float(value)})')
