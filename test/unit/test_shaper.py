"""The command shaper: jerk-limited plans that join without steps and respect position limits."""
import numpy as np
import pytest

from rl_control.contract.shaper import GRID_S, Limits, Shaper, ShaperConfig, ShaperError

# FR3 limits (libfranka 0.15 rate_limiting.h; Franka's FR3 datasheet)
FR3 = Limits(q_min=np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159]),
             q_max=np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159]),
             qd_max=np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]),
             qdd_max=np.full(7, 10.0), qddd_max=np.full(7, 5000.0))
HOME = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])


def reference_on_grid(shaper, plans, t_end):
    """The reference the robot follows, sampled every 1 ms: each plan from its t0 on."""
    ts = np.arange(plans[0].t0, t_end, GRID_S)
    out = []
    for t in ts:
        current = [p for p in plans if p.t0 <= t + 1e-12][-1]
        out.append(current.at(t))
    return ts, np.array([s.q for s in out]), np.array([s.qd for s in out])


def fd(x, k):
    for _ in range(k):
        x = np.diff(x, axis=0) / GRID_S
    return x


def run(shaper, targets, t_start=0.0):
    shaper.anchor(t_start, HOME)
    plans = [shaper.plan]
    period = shaper.cfg.period_s
    for k, v in enumerate(targets):
        plans.append(shaper.step(t_start + k * period, v))
    return plans


def test_consecutive_plans_join_within_the_planned_limits():
    cfg = ShaperConfig()
    shaper = Shaper(FR3, cfg)
    rng = np.random.default_rng(0)
    targets = rng.uniform(-1.5, 1.5, (40, 7))  # a policy that jumps its target every tick
    plans = run(shaper, targets)
    plans.append(shaper.brake(len(targets) * cfg.period_s))
    _, q, qd = reference_on_grid(shaper, plans, plans[-1].end + 0.05)
    acc, jerk = fd(q, 2), fd(q, 3)
    assert np.abs(qd).max() <= (FR3.qd_max * cfg.velocity_fraction).max() + 1e-9
    # finite differences of the exact reference stay at the planned fractions (+ rounding):
    # the tracking ones until the stop, the brake's from its start
    k = int(round((plans[-1].t0 - plans[0].t0) / GRID_S)) - 3
    assert np.all(np.abs(acc[:k]).max(0) <= FR3.qdd_max * cfg.acceleration_fraction * 1.02)
    assert np.all(np.abs(jerk[:k]).max(0) <= FR3.qddd_max * cfg.jerk_fraction * 1.05)
    assert np.all(np.abs(acc).max(0) <= FR3.qdd_max * cfg.brake_acceleration_fraction * 1.02)
    assert np.all(np.abs(jerk).max(0) <= FR3.qddd_max * cfg.brake_jerk_fraction * 1.05)
    assert np.abs(qd[-1]).max() == 0.0  # at rest after the brake


def test_a_plan_tracks_its_target_and_its_tail_ends_at_rest():
    shaper = Shaper(FR3, ShaperConfig())
    shaper.anchor(0.0, HOME)
    v = np.array([0.3, -0.2, 0.1, 0.0, 0.5, -0.4, 0.2])
    for k in range(10):
        plan = shaper.step(k * 0.04, v)
    np.testing.assert_allclose(plan.at(plan.t0 + 0.02).qd, v, atol=1e-9)
    samples = plan.samples(0.004)
    assert samples[0][0] == 0.0 and np.all(np.diff([t for t, _ in samples]) > 0)
    last = samples[-1][1]
    assert np.all(last.qd == 0.0) and np.all(last.qdd == 0.0)
    assert plan.t0 == pytest.approx(9 * 0.04 + 0.02)  # lead after the tick, on the grid


def test_position_guard_stops_inside_the_soft_limits():
    cfg = ShaperConfig(position_margin=0.05)
    shaper = Shaper(FR3, cfg)
    shaper.anchor(0.0, HOME)
    v = np.zeros(7)
    v[0] = 2.0  # joint 1 full speed toward +2.7437
    plans = [shaper.plan] + [shaper.step(k * 0.04, v) for k in range(200)]
    _, q, _ = reference_on_grid(shaper, plans, plans[-1].end)
    assert q[:, 0].max() <= FR3.q_max[0] - cfg.position_margin + 1e-9
    assert q[:, 0].max() > FR3.q_max[0] - cfg.position_margin - 0.05  # got close, then held
    assert any(p.limited[0] for p in plans[1:])


def test_a_joint_outside_the_soft_limits_may_only_move_back_in():
    shaper = Shaper(FR3, ShaperConfig(position_margin=0.1))
    q = HOME.copy()
    q[3] = FR3.q_max[3] - 0.02  # inside the hard limit, outside the soft one
    shaper.anchor(0.0, q)
    out = np.zeros(7)
    out[3] = 0.5  # further out
    plan = shaper.step(0.0, out)
    assert plan.limited[3] and plan.at(plan.end).q[3] <= q[3] + 1e-9
    back = -out
    plan = shaper.step(0.04, back)
    assert not plan.limited[3] and plan.at(plan.t0 + 0.04).qd[3] < 0


def test_a_late_tick_continues_on_the_previous_plan():
    shaper = Shaper(FR3, ShaperConfig())
    shaper.anchor(0.0, HOME)
    v = np.full(7, 0.4)
    p1 = shaper.step(0.0, v)
    p2 = shaper.step(0.3, v)  # 300 ms late: p1's tail was braking meanwhile
    assert shaper.late_plans == 1
    state = p1.at(p2.t0)
    np.testing.assert_array_equal(p2.at(p2.t0).q, state.q)
    np.testing.assert_array_equal(p2.at(p2.t0).qd, state.qd)
    assert round((p2.t0 - p1.t0) / 0.004, 9) == int(round((p2.t0 - p1.t0) / 0.004))


def test_same_inputs_give_bit_identical_plans():
    a, b = Shaper(FR3, ShaperConfig()), Shaper(FR3, ShaperConfig())
    rng = np.random.default_rng(3)
    targets = rng.uniform(-1, 1, (20, 7))
    pa, pb = run(a, targets), run(b, targets)
    for x, y in zip(pa[1:], pb[1:], strict=True):
        for (ta, sa), (tb, sb) in zip(x.samples(0.004), y.samples(0.004), strict=True):
            assert ta == tb and np.array_equal(sa.q, sb.q) and np.array_equal(sa.qd, sb.qd)


@pytest.mark.parametrize('kwargs, field', [
    ({'lead_s': 0.0205}, 'lead_s'), ({'sample_s': 0.003}, 'period_s'),
    ({'jerk_fraction': 1.5}, 'jerk_fraction'), ({'position_margin': -1}, 'position_margin')])
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ShaperError, match=field):
        ShaperConfig(**kwargs)


def test_yaml_round_trip_and_unknown_keys():
    cfg = ShaperConfig(lead_s=0.03)
    assert ShaperConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(ShaperError, match='lead_time'):
        ShaperConfig.from_yaml({'lead_time': 0.1})


def test_fr3_position_dependent_velocity_band_is_respected_near_a_limit():
    from rl_control.robots.profiles import FR3 as PROFILE

    shaper = Shaper(Limits.from_profile(PROFILE), ShaperConfig(position_margin=0.02),
                    velocity_limits=PROFILE.shaping_velocity_limits)
    shaper.anchor(0.0, HOME)
    v = np.zeros(7)
    v[0] = 2.5
    plans = [shaper.plan] + [shaper.step(k * 0.04, v) for k in range(120)]
    _, q, qd = reference_on_grid(shaper, plans, plans[-1].end)
    lo, hi = np.array([PROFILE.velocity_limits(x) for x in q]).transpose(1, 0, 2)
    assert np.all(qd[:, 0] <= hi[:, 0] + 1e-6) and np.all(qd[:, 0] >= lo[:, 0] - 1e-6)
    assert q[:, 0].max() > PROFILE.q_max[0] - 0.2  # it did approach the limit


def test_state_dict_restores_the_same_plans_bit_for_bit():
    a = Shaper(FR3, ShaperConfig())
    rng = np.random.default_rng(5)
    run(a, rng.uniform(-1, 1, (7, 7)))
    b = Shaper(FR3, ShaperConfig())
    b.load_state_dict(a.state_dict())
    for t in np.arange(0.2, 0.6, 0.001):
        assert np.array_equal(a.reference(t).q, b.reference(t).q)
    v = rng.uniform(-1, 1, 7)
    pa, pb = a.step(0.3, v), b.step(0.3, v)
    assert np.array_equal(pa.at(0.35).qd, pb.at(0.35).qd)


def test_a_stop_plans_closer_to_the_limits_than_a_tail_and_stays_within_them():
    """`brake` (a stop: e-stop, watchdog, deactivate) plans at the brake fractions, so it ends
    sooner than the braking tail of a running plan, and the 1 ms reference stays inside the
    profile's acceleration and jerk limits."""
    cfg = ShaperConfig()
    sh = Shaper(FR3, cfg)
    plans = run(sh, [np.full(7, 1.0)] * 10)
    tail = plans[-1].tail.duration
    stop = sh.brake(0.4)
    plans.append(stop)
    assert stop.braking and stop.end - stop.t0 < 0.8 * tail
    _, _, qd = reference_on_grid(sh, plans, stop.end + 0.01)
    assert np.abs(fd(qd, 1)).max() <= 10.0 * cfg.brake_acceleration_fraction + 1e-6
    assert np.abs(fd(qd, 2)).max() <= 5000.0 * cfg.brake_jerk_fraction * 1.01
    assert np.abs(qd[-1]).max() == 0.0
