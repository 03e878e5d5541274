"""Reward and success by the distance of an achieved goal to the desired one, shared by tasks.

panda-gym's `Reach`/`PickAndPlace` `compute_reward` and `is_success` (panda_gym/envs/tasks):
sparse -(d > threshold), dense -d, success d <= threshold; vectorized over leading axes because
HER relabels whole batches (algos/buffers.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np


class DistanceGoal:
    """Mixin for a task with `distance_threshold` [m] and `reward_type` ('sparse' | 'dense')."""

    distance_threshold: float
    reward_type: str

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any = None) -> np.ndarray:
        """-(d > threshold) (sparse) or -d (dense), d the distance, per leading index."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.reward_type == 'sparse':
            return -(d > self.distance_threshold).astype(np.float32)
        return -d.astype(np.float32)

    def is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        """Within the distance threshold at one moment (the held measure is the trace's)."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return d <= self.distance_threshold
