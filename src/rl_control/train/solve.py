"""Time to solve: the metric sweeps minimize when a config has a `target_return`.

Definition (`time_to_solve`, the one place it is written down): the wall time from the start of
the run to the first evaluation whose mean return reaches the target AND which a fresh
100-episode evaluation of that same policy confirms (its mean return also reaches the target).
A run that never gets there within the budget counts at the full budget: it is never dropped,
so a config that solves on 2 seeds of 3 cannot beat one that solves on all 3 by averaging only
its lucky seeds.

Why confirm: a 10-episode evaluation that crosses the threshold is often a lucky draw of start
states (Pendulum's return varies by hundreds between episodes); a sweep minimizing the first
crossing would select for noisy evaluations. Confirmation episodes start from seeds no training
or evaluation episode uses, and their wall time is taken off the run's clock (a measurement,
not training), so a confirmed run and an unconfirmed one are timed alike and a run that is
confirmed continues bit for bit as one never measured (evaluation draws no random numbers).

"Start of the run" is the Trainer's construction (env and agent building included, imports
not): the same for every trial of a sweep, and meaningful inside a reused Ray worker, where
the process started long before the trial.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
import time
from typing import Any

from rl_control.train.config import TrainConfig
from rl_control.train.control import Callback, TrainControl, TrainResult
from rl_control.train.evaluation import Evaluator
from rl_control.train.learn import train

CONFIRM_EPISODES = 100
DEFAULT_BUDGET_S = 600.0
_CONFIRM_SEED_OFFSET = 2_000_000  # above learn.py's eval seeds (seed + 1e6 + k * episodes)


@dataclass
class SolveResult:
    """How one run did against its target; `time_s` is the budget when it did not solve."""

    solved: bool
    time_s: float
    step: int | None = None
    eval_return: float | None = None  # the evaluation that reached the target
    confirm_return: float | None = None  # its 100-episode confirmation
    candidates: int = 0  # evaluations that reached the target (confirmed or not)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(vars(self))


def time_to_solve(rows: Iterable[dict[str, Any]], target: float,
                  confirm: Callable[[dict[str, Any]], float], budget_s: float,
                  candidates: int = 0) -> SolveResult:
    """The metric (module docstring) over progress rows in step order.

    `confirm(row)` returns the mean return of a fresh `CONFIRM_EPISODES`-episode evaluation of
    the policy as it was at `row`; it is called only for rows that reach `target` within
    `budget_s` (`row['wall_s']`), in order, until one is confirmed. `candidates` carries the
    count of earlier candidates when rows are fed one at a time (`SolveTracker`).
    """
    for row in rows:
        value = row.get('eval_mean_return')
        if row['wall_s'] > budget_s:
            break
        if value is None or value < target:
            continue
        candidates += 1
        confirmed = float(confirm(row))
        if confirmed >= target:
            return SolveResult(True, float(row['wall_s']), int(row['step']), float(value),
                               confirmed, candidates)
    return SolveResult(False, float(budget_s), candidates=candidates)


class SolveTracker(Callback):
    """Applies `time_to_solve` online: confirms candidates with the live policy, stops when solved.

    The run must not stop by itself at its target (`run_to_solve` clears `target_return`): an
    unconfirmed candidate has to keep training. Stops the run once solved or past the budget.
    """

    def __init__(self, cfg: TrainConfig, target: float, budget_s: float = DEFAULT_BUDGET_S,
                 episodes: int = CONFIRM_EPISODES) -> None:
        self.cfg, self.target, self.budget_s, self.episodes = cfg, target, budget_s, episodes
        self.result = SolveResult(False, float(budget_s))
        self.run: Any = None
        self._evaluator: Evaluator | None = None

    def on_start(self, run: Any) -> None:
        """Keep the run: its live policy is what gets confirmed."""
        self.run = run

    def _confirm(self, row: dict[str, Any]) -> float:
        t0 = time.perf_counter()
        if self._evaluator is None:
            self._evaluator = Evaluator(self.cfg.env, self.episodes,
                                        self.cfg.eval.kwargs(self.cfg.env_kwargs),
                                        self.cfg.eval.episode_steps(self.cfg.time_limit))
        seed = (self.cfg.seed + _CONFIRM_SEED_OFFSET
                + self.result.candidates * self.episodes)
        mean = self._evaluator.run(self.run.act, seed).mean_return
        self.run.exclude_time(time.perf_counter() - t0)
        return mean

    def on_eval(self, info: dict[str, Any]) -> bool | None:
        """Confirm a candidate; False (stop) once solved or out of budget."""
        if self.result.solved:
            return False
        found = time_to_solve([info], self.target, self._confirm, self.budget_s,
                              self.result.candidates)
        if found.solved or found.candidates != self.result.candidates:
            self.result = found
        if found.solved or info['wall_s'] > self.budget_s:
            return False
        return None

    def on_end(self, result: TrainResult) -> None:
        """Release the confirmation envs."""
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None


def run_to_solve(cfg: TrainConfig, out_dir: str | Path, budget_s: float = DEFAULT_BUDGET_S,
                 callbacks: Iterable[Callback] = (), control: TrainControl | None = None,
                 command: str | None = None, tracker: SolveTracker | None = None,
                 ) -> tuple[TrainResult, SolveResult]:
    """Train `cfg` until a confirmed solve (or total_steps, or the budget); both results.

    The target is the config's `target_return` (or `tracker`'s, when one is passed in so that
    the caller's callbacks can read `tracker.result` as the run goes). The run itself trains
    with `target_return` cleared, so that only a confirmed solve stops it; `callbacks` see each
    progress row after the tracker has judged it.
    """
    if tracker is None:
        if cfg.target_return is None:
            raise ValueError('run_to_solve: the config has no target_return')
        tracker = SolveTracker(cfg, float(cfg.target_return), budget_s)
    run_cfg = replace(cfg, target_return=None)
    result = train(run_cfg, out_dir, progress=False, callbacks=[tracker, *callbacks],
                   control=control, command=command)
    return result, tracker.result
