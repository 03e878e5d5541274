"""The pure serving loop: inputs by name, every stop a brake, goals in the trained region."""
import numpy as np
import pytest

from rl_control.envs.panda_reach import panda_contract
from rl_control.robots.franka import FrankaArm
from rl_control.robots.profiles import FR3, PANDA
from rl_control.serve.loop import ServeError, ServingLoop, default_robot_joints
from rl_control.serve.settings import ServeSettings

ARM = list(PANDA.joint_names)
HOME = PANDA.home
GOAL = np.array([0.6, 0.1, 0.2])


class ConstPolicy:
    def __init__(self, action):
        self.action = np.asarray(action, np.float32)

    def act(self, obs):
        return self.action.copy()


def spec(**over):
    s = panda_contract().to_yaml()
    s.update({'robot': 'panda', 'shaper': None,
              'goal_region': {'low': [0.45, -0.15, 0.0], 'high': [0.75, 0.15, 0.3]},
              'success_distance': 0.05})
    s.update(over)
    return s


def make(action=(0.3,) * 7, **settings):
    loop = ServingLoop(spec(), ConstPolicy(action), ServeSettings(**settings))
    loop.activate(0.0)
    return loop


def feed(loop, t, q=None, qd=None, names=ARM, stamp=None):
    """A joint state at t: by default the arm tracks the loop's own reference exactly."""
    if q is None:
        ref = loop.shaper.reference(t) if loop.shaper.anchored else None
        q = HOME if ref is None else ref.q
        qd = np.zeros(7) if ref is None else ref.qd
    qd = np.zeros(len(q)) if qd is None else qd
    return loop.on_state(t, t, names, np.asarray(q, float), np.asarray(qd, float),
                         t if stamp is None else stamp)


def run(loop, t0, t1, goal=True, period=0.04):
    if goal:
        assert loop.on_goal('panda_link0', GOAL) is None
    out = []
    t = t0
    while t < t1 - 1e-9:
        feed(loop, t)
        out.append((t, loop.tick(t, t)))
        t += period
    return out


def test_commands_come_in_controller_order_for_joints_mapped_by_name():
    order = ['panda_joint3', 'panda_joint1', 'panda_joint2', *ARM[3:]]
    loop = make(action=np.linspace(-0.5, 0.5, 7), command_joints=order, ramp_in_s=0.0)
    shuffled = ['panda_finger_joint1', *reversed(ARM)]
    loop.on_goal('', GOAL)  # an empty frame is the base frame
    for k in range(8):
        t = k * 0.04
        ref = loop.shaper.reference(t) if loop.shaper.anchored else None
        q = HOME if ref is None else ref.q
        loop.on_state(t, t, shuffled, np.concatenate([[0.04], q[::-1]]), np.zeros(8), t)
        out = loop.tick(t, t)
    msg = out.trajectory
    assert list(msg.joint_names) == order
    want = loop.act_spec.scale * np.linspace(-0.5, 0.5, 7)
    plan_v = out.plan.at(out.plan.t0 + 0.03).qd
    np.testing.assert_allclose(plan_v, want, atol=1e-9)
    pt = msg.points[-1]
    np.testing.assert_allclose(pt.positions, out.plan.rest_q[[2, 0, 1, 3, 4, 5, 6]])
    assert all(v == 0.0 for v in pt.velocities)  # a default JTC accepts it


@pytest.mark.parametrize('fault', ['stale', 'nan_state', 'nan_action', 'estop', 'deactivate',
                                   'missing_joint', 'goal_outside', 'internal'])
def test_every_stop_is_a_brake_to_rest_not_an_instant_zero(fault):
    loop = make(action=(0.8,) * 7, ramp_in_s=0.0)
    out = run(loop, 0.0, 0.6)
    moving = out[-1][1].plan
    assert np.abs(moving.at(0.6).qd).max() > 0.5
    t = 0.6
    if fault == 'stale':
        t += 0.08  # no state for 2 periods (stale after 1.5), the arm still moving
    elif fault == 'nan_state':
        q = loop.shaper.reference(t).q.copy()
        q[2] = np.nan
        assert feed(loop, t, q)[1] == 'bad_state'
    elif fault == 'nan_action':
        loop.policy = ConstPolicy([np.nan] * 7)
        feed(loop, t)
    elif fault == 'estop':
        loop.safety.estop()
        feed(loop, t)
    elif fault == 'deactivate':
        loop.deactivate()
        feed(loop, t)
    elif fault == 'missing_joint':
        loop.cache.arrival[4] = -np.inf
        feed(loop, t, loop.shaper.reference(t).q[:4], np.zeros(4), ARM[:4])
    elif fault == 'goal_outside':
        assert loop.on_goal('panda_link0', np.array([50.0, 0, 0])) == 'goal_outside_region'
        feed(loop, t)
    else:
        loop.fail('services thread died')
        feed(loop, t)
    stop = loop.tick(t, t)
    assert stop.reason != 'ok' and stop.plan is not None and stop.plan.braking
    start = stop.plan.at(stop.plan.t0)
    assert np.abs(start.qd).max() > 0.3  # it starts from the motion, no jump to zero
    end = stop.plan.at(stop.plan.end)
    assert np.all(end.qd == 0.0) and np.all(end.qdd == 0.0)
    last = stop.trajectory.points[-1]
    assert all(v == 0.0 for v in last.velocities)
    assert loop.values(t)['braking_s'] == pytest.approx(stop.plan.end - t)


def test_the_brake_is_within_the_robot_limits_on_the_franka_model():
    loop = make(action=(0.9,) * 7, ramp_in_s=0.0, robot='panda')
    arm = FrankaArm(PANDA, 'trajectory')
    loop.on_goal('panda_link0', GOAL)
    for k in range(40):
        t = arm.time
        names, q, qd, _ = arm.joint_state()
        feed(loop, t, q, qd, list(names))
        if k == 25:
            loop.safety.estop()
        out = loop.tick(t, t)
        if out.trajectory is not None:
            arm.submit(t + 0.004, out.trajectory)
        arm.step(40)
    st = arm.state()
    assert st['reflex'] is None and st['rejected'] == 0
    assert np.abs(st['qd']).max() < 1e-3


def test_goals_outside_the_trained_region_are_refused_and_the_arm_holds():
    loop = make()
    assert loop.on_goal('panda_link0', np.array([0.6, 0.0, 0.1])) is None
    assert loop.on_goal('panda_link0', np.array([0.6, 0.0, 5.0])) == 'goal_outside_region'
    assert loop.on_goal('world', GOAL) == 'bad_goal'
    assert loop.goal_status()['state'] == 'refused'
    feed(loop, 0.0)
    assert loop.tick(0.0, 0.0).reason == 'bad_goal'
    tight = make(goal_low=[0.5, -0.1, 0.1], goal_high=[0.7, 0.1, 0.25])
    assert tight.on_goal('panda_link0', np.array([0.46, 0.0, 0.1])) == 'goal_outside_region'
    with pytest.raises(ServeError, match='no region'):
        make(goal_low=[0.8, 0, 0], goal_high=[0.9, 0.1, 0.1])


def test_partial_messages_merge_by_name_with_per_joint_freshness():
    loop = make(ramp_in_s=0.0)
    run(loop, 0.0, 0.2)
    t = 0.2
    # the gripper's own message, then the arm in two halves: still fresh, still moving
    loop.on_state(t, t, ['panda_finger_joint1', 'panda_finger_joint2'], np.array([0.04, 0.04]),
                  np.zeros(2), t)
    loop.on_state(t, t, ARM[:4], HOME[:4], np.zeros(4), t)
    loop.on_state(t, t, ARM[4:], HOME[4:], np.zeros(3), t)
    assert loop.tick(t, t).reason == 'ok'
    # half the arm stops reporting: the other half alone is not enough
    for k in range(1, 4):
        t = 0.2 + 0.04 * k
        loop.on_state(t, t, ARM[:4], HOME[:4], np.zeros(4), t)
    assert loop.tick(t, t).reason == 'stale_state'


def test_duplicate_names_are_refused_naming_them():
    loop = make()
    names = [*ARM, 'panda_joint3']
    tick_now, why = loop.on_state(0.0, 0.0, names, np.zeros(8), np.zeros(8), 0.0)
    assert why == 'duplicate_joints' and tick_now
    assert "['panda_joint3']" in loop.cache.last_error


def test_empty_velocities_are_fine_without_a_joint_vel_term():
    s = spec()
    s['observation']['terms'] = [t for t in s['observation']['terms']
                                 if t['name'] != 'joint_vel']

    class Policy(ConstPolicy):
        def act(self, obs):
            assert obs.shape == (13,)
            return super().act(obs)

    loop = ServingLoop(s, Policy([0.1] * 7), ServeSettings())
    loop.activate(0.0)
    loop.on_goal('panda_link0', GOAL)
    assert loop.on_state(0.0, 0.0, ARM, HOME, np.zeros(0), 0.0)[1] is None
    assert loop.tick(0.0, 0.0).reason == 'ok'
    with_vel = make()
    assert with_vel.on_state(0.0, 0.0, ARM, HOME, np.zeros(0), 0.0)[1] == 'no_velocity'


def test_state_trigger_decimates_to_the_control_period():
    loop = make(trigger='state')
    loop.on_goal('panda_link0', GOAL)
    ticks = 0
    for k in range(400):  # 1 kHz states for 0.4 s
        t = k * 1e-3
        due, _ = feed(loop, t)
        if due:
            loop.tick(t, t)
            ticks += 1
    assert ticks == 10


def test_a_steady_clock_backstop_stops_the_arm_when_sim_time_stands_still():
    loop = make(ramp_in_s=0.0, backstop_s=0.3)
    loop.on_goal('panda_link0', GOAL)
    loop.on_state(5.0, 100.0, ARM, HOME, np.zeros(7), 5.0)
    assert loop.tick(5.0, 100.1).reason == 'ok'
    assert loop.tick(5.0, 100.5).reason == 'stale_state'  # /clock stopped, wall time did not


def test_a_control_rate_unlike_the_bundles_warns():
    assert any('control_rate_hz 50' in w for w in make(control_rate_hz=50.0).warnings)
    assert not make().warnings[1:]  # only the "trained without shaping" note


def test_a_panda_bundle_on_the_fr3_stays_in_fr3_limits_and_says_so():
    loop = make(action=(-1.0,) * 7, robot='fr3', ramp_in_s=0.0)
    assert loop.robot_joints == list(FR3.joint_names)
    assert any('tighter' in w for w in loop.warnings)
    loop.on_goal('fr3_link0', GOAL)
    q = FR3.home.copy()
    for k in range(150):  # every joint pushed toward its lower limit
        t = k * 0.04
        loop.on_state(t, t, list(FR3.joint_names), q, np.zeros(7), t)
        out = loop.tick(t, t)
        q = out.plan.at(t + 0.04).q
    assert np.all(q >= FR3.q_min + loop.shaper_cfg.position_margin - 1e-9)
    assert q[5] < FR3.home[5] - 1.0 and q[5] > FR3.q_min[5]  # joint 6: FR3's 0.5445


def test_bad_settings_name_the_parameter():
    with pytest.raises(ServeError, match='robot_joints'):
        make(robot_joints=ARM[:6])
    with pytest.raises(ServeError, match='command_joints'):
        make(command_joints=[*ARM[:6], 'panda_joint1'])
    with pytest.raises(ServeError, match="profile"):
        make(robot='ur5')
    with pytest.raises(ServeError, match='action.type'):
        make(command_type='effort')


def test_default_robot_joints_follow_the_joint_number():
    assert default_robot_joints(ARM, FR3.joint_names) == list(FR3.joint_names)
    assert default_robot_joints(['a', 'b'], FR3.joint_names) == ['a', 'b']


def _serve_against_the_arm(loop, arm, steps, rng, extra_tick=0.0, latency_s=(0.002, 0.002),
                           estop_at=None):
    """States every 1 ms, ticks every 40 ms (+ random extra ones), messages in publish order."""
    arrival, t_next = 0.0, arm.time
    for _ in range(steps):
        t = arm.time
        names, q, qd, _ = arm.joint_state()
        loop.on_state(t, t, list(names), q, qd, t)
        tick = t >= t_next - 1e-9 or rng.random() < extra_tick
        if t >= t_next - 1e-9:
            t_next = t + 0.04
        if estop_at is not None and abs(t - estop_at) < 5e-4:
            loop.safety.estop()
            tick = True
        if tick:
            out = loop.tick(t, t)
            if out.trajectory is not None:
                arrival = max(arrival, t + rng.uniform(*latency_s))  # DDS keeps the order
                arm.submit(arrival, out.trajectory)
        arm.step(1)
    return arm.state()


@pytest.mark.parametrize('after_ms', [0, 5, 19, 30])
def test_a_brake_sooner_than_the_lead_after_a_tick_joins_the_message_the_controller_runs(
        after_ms):
    """An e-stop (or a watchdog brake) right after a tick: the previous plan has not started,
    the controller still runs the previous message's prefix; the brake must join that, on a
    robot whose measured state lags its reference (MuJoCo), not spline from the measured state
    or re-anchor on it."""
    from rl_control.robots.physics import mujoco_physics

    loop = make(action=(0.9,) * 7, ramp_in_s=0.0)
    arm = FrankaArm(PANDA, 'trajectory', physics=mujoco_physics(PANDA))
    loop.on_goal('panda_link0', GOAL)
    st = _serve_against_the_arm(loop, arm, 1600, np.random.default_rng(0),
                                estop_at=1.0 + after_ms * 1e-3)
    assert st['reflex'] is None and st['rejected'] == 0 and loop.reanchors == 0
    assert np.abs(st['qd']).max() < 1e-3


def test_irregular_ticks_and_latency_below_the_lead_never_make_a_reflex():
    """Ticks jittered by extra ones (watchdog, services), message latency up to 18 ms (lead
    20 ms), an e-stop: the FR3 model raises nothing and ends at rest."""
    from rl_control.robots.physics import mujoco_physics

    rng = np.random.default_rng(4)
    loop = make(action=(0.6, -0.5, 0.4, 0.7, -0.6, 0.5, 0.8), ramp_in_s=0.2, robot='fr3')
    arm = FrankaArm(FR3, 'trajectory', physics=mujoco_physics(FR3))
    loop.on_goal('fr3_link0', GOAL)
    st = _serve_against_the_arm(loop, arm, 2500, rng, extra_tick=0.05,
                                latency_s=(0.0005, 0.018), estop_at=2.0)
    assert st['reflex'] is None and st['rejected'] == 0
    assert np.abs(st['qd']).max() < 1e-3


def test_the_reference_follows_the_plan_running_when_two_are_pending():
    loop = make(action=(0.8,) * 7, ramp_in_s=0.0)
    run(loop, 0.0, 0.4)
    t = 0.4
    feed(loop, t)
    loop.tick(t, t)                      # plan A starts at 0.42
    before = loop.shaper.reference(t + 0.005)
    loop.safety.estop()
    loop.tick(t + 0.004, t + 0.004)      # plan B starts at 0.424: A has not started yet
    # between now and A's start the arm still follows the plan from 0.36 (started at 0.38)
    now = loop.shaper.reference(t + 0.005)
    np.testing.assert_allclose(now.q, before.q)
    np.testing.assert_allclose(now.qd, before.qd)


def test_a_stamp_one_period_ahead_of_the_clock_is_not_stale():
    """Under sim time a state can be processed before the /clock message that precedes it."""
    loop = make(ramp_in_s=0.0)
    loop.on_goal('panda_link0', GOAL)
    for k in (1, 2, 3, 99, 1234):  # ms grids on which now + 0.04 - 0.04 != now in floats
        now = k * 1_000_000 * 1e-9
        loop.on_state(now, 0.0, ARM, HOME, np.zeros(7), (k + 40) * 1_000_000 * 1e-9)
        assert loop.input_problem(now, 0.0) is None, now


def test_state_trigger_ticks_at_a_state_stamped_ahead_of_its_clock():
    """Lockstep: the state for t = 0.08 processed while the clock still says 0.04 is due."""
    loop = make(trigger='state', ramp_in_s=0.0)
    loop.on_goal('panda_link0', GOAL)
    for clock, stamp in ((0.0, 0.0), (0.04, 0.04), (0.04, 0.08)):
        due, _ = loop.on_state(clock, clock, ARM, HOME, np.zeros(7), stamp)
        assert due and loop.due_time == pytest.approx(stamp)
        loop.tick(loop.due_time, clock)


def test_refused_messages_are_the_reason_until_a_valid_one_comes():
    loop = make(ramp_in_s=0.0)
    loop.on_goal('panda_link0', GOAL)
    feed(loop, 0.0)
    assert loop.tick(0.0, 0.0).reason == 'ok'
    loop.on_state(0.01, 0.01, [*ARM, 'panda_joint3'], np.zeros(8), np.zeros(8), 0.01)
    loop.on_state(0.01, 0.01, ['panda_finger_joint1'], np.zeros(1), np.zeros(1), 0.01)
    assert loop.tick(0.01, 0.01).reason == 'duplicate_joints'  # the gripper's does not clear it
    loop.on_state(0.02, 0.02, ARM, HOME, np.zeros(7), 0.02)
    assert loop.input_problem(0.02, 0.02) is None


def test_a_clock_stepping_back_restarts_from_the_measured_state():
    """A simulator restarts its /clock (or a driver its stamps): the next state is answered and
    the next plan starts at the new time, not 10 s in the future."""
    loop = make(trigger='state', ramp_in_s=0.0)
    loop.on_goal('panda_link0', GOAL)
    for k in range(5):
        t = 10.0 + 0.04 * k
        assert feed(loop, t)[0]
        loop.tick(loop.due_time, t)
    due, _ = loop.on_state(0.04, 0.04, ARM, HOME, np.zeros(7), 0.04)
    assert due
    out = loop.tick(loop.due_time, 0.04)
    assert out.reason == 'ok' and out.plan.t0 < 0.1


def test_an_effort_stop_without_fresh_states_floats_instead_of_pushing_on():
    """Effort stop: -damping x the MEASURED velocity; when the states stop there is none, and
    damping the last one forever would decelerate the arm and then drive it back."""
    s = spec()
    s['action'].update(type='joint_effort', scale=[5.0] * 7, low=[-87.0] * 7, high=[87.0] * 7)
    loop = ServingLoop(s, ConstPolicy([0.0] * 7), ServeSettings(command_type='effort'))
    loop.activate(0.0)
    loop.on_goal('panda_link0', GOAL)
    qd = np.full(7, 0.5)
    for k in range(200):  # fresh states of a moving arm, e-stopped: damp it
        t = k * 1e-3
        loop.on_state(t, t, ARM, HOME, qd, t)
        if k == 0:
            loop.safety.estop()
            loop.tick(t, t)
        tau = loop.stream(t)
    np.testing.assert_allclose(tau, -5.0 * qd, atol=1e-9)
    for k in range(200, 600):  # the states stop: ramp to zero torque, do not push on
        tau = loop.stream(k * 1e-3)
    np.testing.assert_allclose(tau, 0.0, atol=1e-12)


def _stall_once(withhold):
    """The host computes a tick, then stalls 60 ms before it can send (a GC pause, a busy
    core): the arm runs on meanwhile. Returns the arm's state at the end and the loop."""
    loop = make(action=(0.6,) * 7, ramp_in_s=0.0)
    arm = FrankaArm(PANDA, 'trajectory')
    loop.on_goal('panda_link0', GOAL)
    t_next, stalled_until, pending = 0.0, -1.0, None
    for _ in range(1500):
        t = arm.time
        if pending is not None and t >= stalled_until - 1e-9:
            out, pending = pending, None
            if withhold and t > out.plan.t0 - 0.002:  # what policy_server does
                loop.withdraw()
            else:
                arm.submit(t, out.trajectory)
        if t >= stalled_until - 1e-9:
            names, q, qd, _ = arm.joint_state()
            loop.on_state(t, t, list(names), q, qd, t)
            if t >= t_next - 1e-9:
                t_next = t + 0.04
                out = loop.tick(t, t)
                if abs(t - 0.6) < 5e-4:
                    pending, stalled_until = out, t + 0.06
                elif out.trajectory is not None:
                    arm.submit(t + 0.001, out.trajectory)
        arm.step(1)
    return arm.state(), loop


def test_a_message_computed_too_late_is_withheld_and_the_arm_runs_on_without_a_reflex():
    """Sent anyway, a message that reaches the controller after its plan start replaces the
    running one mid-motion (here: the old one already braking, the new one cruising): a
    reflex. Withheld, the controller runs the previous message, and the next tick plans from
    that message's plan: no reflex, no re-anchor."""
    sent, _ = _stall_once(withhold=False)
    assert sent['reflex'] is not None
    st, loop = _stall_once(withhold=True)
    assert st['reflex'] is None and st['rejected'] == 0
    assert loop.withdrawn == 1 and loop.reanchors == 0
    assert np.abs(st['qd']).max() > 0.1  # the arm moved on after the stall
