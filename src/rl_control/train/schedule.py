"""When to evaluate, checkpoint and stop, as pure functions of the env-step counter.

Steps advance by n_envs per vector step, so "every N steps" means "when the counter crosses a
multiple of N" (not "when it equals one"): the same rule at any n_envs.
"""
from __future__ import annotations

from dataclasses import dataclass


def crossed(every: int | None, before: int, after: int) -> bool:
    """Whether going from `before` to `after` env steps crosses a multiple of `every`."""
    return every is not None and after // every > before // every


@dataclass(frozen=True)
class Schedule:
    """The cadence of one run (from TrainConfig)."""

    total_steps: int
    eval_every: int | None
    checkpoint_every: int | None

    def eval_due(self, before: int, after: int) -> bool:
        """An evaluation after this step (the final one is the loop's, after the last step)."""
        return after < self.total_steps and crossed(self.eval_every, before, after)

    def checkpoint_due(self, before: int, after: int) -> bool:
        """A scheduled checkpoint after this step (the final one is written at the end)."""
        return after < self.total_steps and crossed(self.checkpoint_every, before, after)

    def done(self, steps: int) -> bool:
        """The step budget is spent."""
        return steps >= self.total_steps
