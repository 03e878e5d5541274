"""Per-env running returns and the recent training-episode returns for progress rows."""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class EpisodeStats:
    """Accumulates rewards per env; an episode end (terminated or truncated) closes its return."""

    def __init__(self, n_envs: int, keep: int = 20) -> None:
        self.returns = np.zeros(n_envs)
        self.recent: deque[float] = deque(maxlen=keep)
        self.episodes = 0

    def add(self, rew: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Add one vector step; returns the indices of the envs whose episode ended."""
        self.returns += rew
        done = np.flatnonzero(np.logical_or(terminated, truncated))
        for i in done:
            self.recent.append(float(self.returns[i]))
            self.returns[i] = 0.0
            self.episodes += 1
        return done

    def restart(self) -> None:
        """Every env starts a new episode (after a reset of all envs)."""
        self.returns[:] = 0.0

    @property
    def recent_mean(self) -> float | None:
        """Mean return of the last finished training episodes (None before the first)."""
        return float(np.mean(self.recent)) if self.recent else None

    def state_dict(self) -> dict[str, Any]:
        """Running returns, recent returns and the episode count."""
        return {'returns': self.returns.copy(), 'recent': list(self.recent),
                'episodes': self.episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.returns[:] = state['returns']
        self.recent.clear()
        self.recent.extend(state['recent'])
        self.episodes = int(state['episodes'])
