"""Time to solve (train/solve.py): the definition, and its online use during training."""
import math

import pytest

from rl_control.train.config import config_from_dict
from rl_control.train.learn import train
from rl_control.train.solve import SolveTracker, run_to_solve, time_to_solve


def _rows(*pairs):
    return [{'step': 100 * (i + 1), 'wall_s': w, 'eval_mean_return': r}
            for i, (w, r) in enumerate(pairs)]


def test_first_confirmed_candidate_counts():
    rows = _rows((1.0, -500), (2.0, -150), (3.0, -300), (4.0, -190), (5.0, -100))
    asked = []

    def confirm(row):
        asked.append(row['step'])
        return {200: -260.0, 400: -180.0}[row['step']]  # the first crossing was lucky

    res = time_to_solve(rows, -200, confirm, budget_s=60)
    assert asked == [200, 400]  # only candidates, in order, until one is confirmed
    assert res.solved and res.time_s == 4.0 and res.step == 400
    assert (res.eval_return, res.confirm_return, res.candidates) == (-190, -180.0, 2)


def test_unsolved_counts_at_the_full_budget():
    res = time_to_solve(_rows((1.0, -900), (2.0, -250)), -200, lambda r: 0.0, budget_s=60)
    assert not res.solved and res.time_s == 60 and res.step is None
    # a crossing after the budget does not count, nor is it confirmed
    res = time_to_solve(_rows((1.0, -900), (70.0, -100)), -200,
                        lambda r: pytest.fail('confirmed past the budget'), budget_s=60)
    assert not res.solved and res.time_s == 60


def _cfg(**extra):
    return config_from_dict({'env': 'Pendulum-v1', 'algo': 'sac', 'seed': 3,
                             'total_steps': 400, 'tensorboard': False,
                             'eval': {'every': 100, 'episodes': 2},
                             'algo_kwargs': {'hidden_sizes': [16], 'batch_size': 16,
                                             'learning_starts': 50}, **extra})


def test_run_to_solve_confirms_with_100_fresh_episodes(tmp_path):
    # Any policy reaches -5000 on Pendulum: the first evaluation is confirmed and ends the run.
    result, solve = run_to_solve(_cfg(target_return=-5000), tmp_path / 'easy', budget_s=600)
    assert solve.solved and solve.step == 100 and result.steps == 100
    assert solve.confirm_return is not None and solve.confirm_return >= -5000
    assert solve.time_s == pytest.approx(result.history[0]['wall_s'])
    # never reachable: runs all its steps, counts at the budget
    result, solve = run_to_solve(_cfg(target_return=0.0), tmp_path / 'hard', budget_s=123)
    assert not solve.solved and solve.time_s == 123 and result.steps == 400


class _Unconvinced(SolveTracker):
    """Runs the real confirmation but rejects it, so every crossing is an unconfirmed one."""

    def _confirm(self, row):
        super()._confirm(row)
        return -math.inf


def test_an_unconfirmed_candidate_trains_on_unchanged(tmp_path):
    # Confirming (100 episodes with the live policy) must change nothing about the run.
    cfg = _cfg()
    plain = train(cfg, tmp_path / 'plain', progress=False)
    tracker = _Unconvinced(cfg, target=-5000, budget_s=600, episodes=5)
    measured, solve = run_to_solve(cfg, tmp_path / 'measured', tracker=tracker)
    assert not solve.solved and solve.candidates == 4  # every evaluation was a candidate
    skip = {'wall_s', 'steps_per_s'}
    strip = [[{k: v for k, v in r.items() if k not in skip} for r in h.history]
             for h in (plain, measured)]
    assert strip[0] == strip[1]
