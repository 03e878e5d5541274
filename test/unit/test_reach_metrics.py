"""Held success and the other reach-and-hold measures, on scripted end-effector paths."""
import numpy as np
import pytest

from rl_control.envs.reach_metrics import EpisodeTrace, report_lines, summarize

PERIOD = 0.04
START = np.array([0.3, 0.0, 0.5])
GOAL = np.array([0.5, 0.0, 0.3])


def _trace(path, qd_of_t, seconds=4.0):
    """Sample `path(t)` (end effector) and `qd_of_t(t)` (joint speeds) every control period."""
    tr = EpisodeTrace(GOAL, 0.02, start_ee=START)
    for k in range(1, int(round(seconds / PERIOD)) + 1):
        t = k * PERIOD
        tr.add(t, path(t), qd_of_t(t))
    return tr.result()


def _arrive(t, at=1.0):
    """Straight to the goal in `at` seconds, then stay."""
    return START + (GOAL - START) * min(t / at, 1.0)


def _moving_until(at):
    return lambda t: np.full(7, 0.5 if t <= at + 1e-9 else 0.0)


def test_an_arm_that_reaches_and_stops_is_held_and_settles_when_it_arrives():
    r = _trace(_arrive, _moving_until(1.0))
    assert r['held'] and r['held_1cm'] and r['success'] and r['reached_2cm']
    # Within 2 cm from ~0.92 s, at rest from the first sample after 1.0 s.
    assert r['settle_time_s'] == pytest.approx(1.04)
    assert r['final_distance'] == pytest.approx(0.0, abs=1e-12)
    assert r['last_second_path'] == 0.0 and r['last_second_distance_max'] < 1e-12
    assert r['final_joint_speed'] == 0.0
    assert r['path_ratio'] == pytest.approx(1.0)
    assert r['time_to_goal_s'] == pytest.approx(0.96)  # 2 cm of 28 cm left at 0.93 s


def test_an_arm_that_reaches_and_leaves_reached_but_is_not_held():
    def path(t):
        return _arrive(t) + (np.array([0.0, 0.02 * (t - 3.0), 0.0]) if t > 3.0 else 0.0)

    r = _trace(path, lambda t: np.full(7, 0.0 if 1.0 < t <= 3.0 else 0.1))
    assert r['reached_1cm'] and r['reached'] and not r['held'] and not r['success']
    assert r['held_5cm'] is False  # it moves (0.1 rad/s, 2 cm/s) although still within 5 cm
    assert r['settle_time_s'] is None
    assert r['last_second_path'] == pytest.approx(0.02, rel=1e-6)


def test_an_arm_that_vibrates_within_the_distance_is_not_held():
    def path(t):  # +-5 mm along y at 12.5 Hz, always within 2 cm of the goal after 1 s
        return _arrive(t) + np.array([0.0, 0.005 * (-1) ** round(t / PERIOD), 0.0])

    r = _trace(path, lambda t: np.zeros(7))  # joint speeds read zero: the end effector decides
    assert r['reached'] and r['last_second_distance_max'] < 0.02
    assert not r['held'] and r['settle_time_s'] is None
    assert r['last_second_path'] == pytest.approx(0.25, rel=0.05)


def test_an_arm_that_stops_too_late_is_held_only_if_it_rests_over_the_whole_last_second():
    late = _trace(lambda t: _arrive(t, at=3.2), _moving_until(3.2))
    assert not late['held'] and late['settle_time_s'] == pytest.approx(3.24)
    early = _trace(lambda t: _arrive(t, at=2.9), _moving_until(2.9))
    assert early['held'] and early['settle_time_s'] == pytest.approx(2.96)  # moved until 2.9


def test_summaries_count_episodes_that_never_settle_as_infinitely_slow():
    held = _trace(_arrive, _moving_until(1.0))
    drift = _trace(lambda t: _arrive(t) + np.array([0, 0.01 * t, 0]), _moving_until(4.0))
    s = summarize([held, drift, drift])
    assert s['held'] == pytest.approx(1 / 3) and s['reached_5cm'] == 1.0
    assert s['settle_time_s_median'] is None and s['unsettled'] == 2
    s = summarize([held, held, drift])
    assert s['settle_time_s_median'] == pytest.approx(1.04) and s['settle_time_s_max'] is None
    assert any('held' in line for line in report_lines(s))
