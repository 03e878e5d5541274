"""Serving a pick-and-place bundle (pure loop): the object pose and its watchdog, the hand's
width and command, the Cartesian action through the measured joints (serve/task_io.py)."""
import gymnasium as gym
import numpy as np
from pick_helpers import save_zero_pick_bundle
import pytest

from rl_control.bundle.io import ROBOT_FIELDS
from rl_control.contract.gripper import GripperSpec
from rl_control.envs.scripted_pick import ScriptedPickPlace
from rl_control.robots.franka_hand import GRASP, MOVE
from rl_control.robots.profiles import PANDA
from rl_control.serve import diagnostics
from rl_control.serve.loop import ServeError, ServingLoop
from rl_control.serve.settings import ServeSettings

ENV_ID = 'rl_control/FrankaPickPlace-v1'
ARM = list(PANDA.joint_names)
FINGERS = list(PANDA.finger_joint_names)
CUBE = np.array([0.6, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])
GOAL = np.array([0.6, 0.1, 0.15])
PERIOD = 0.04


@pytest.fixture(scope='module')
def env():
    e = gym.make(ENV_ID, randomize=False)
    yield e
    e.close()


@pytest.fixture(scope='module')
def spec(env):
    """policy.yaml as a bundle of this env has it (bundle/io.py: the contract, ROBOT_FIELDS)."""
    u = env.unwrapped
    s = u.contract.to_yaml()
    s.update({k: u.robot_task.get(k) for k in ROBOT_FIELDS})
    return s


class ConstPolicy:
    def __init__(self, v, g):
        self.action = np.r_[v, g].astype(np.float32)

    def act(self, obs):
        return self.action.copy()


def make(spec, v=(0.8, 0.0, 0.0), g=1.0, **settings):
    loop = ServingLoop(spec, ConstPolicy(v, g), ServeSettings(**{'ramp_in_s': 0.0,
                                                                  **settings}))
    loop.activate(0.0)
    assert loop.on_goal('panda_link0', GOAL) is None
    return loop


def feed(loop, t, pose=CUBE, width=0.08, frame='panda_link0', stamp=None):
    """Arm and finger joint states at t (the arm tracks the loop's plan), and an object pose."""
    ref = loop.shaper.reference(t) if loop.shaper.anchored else None
    q, qd = (PANDA.home, np.zeros(7)) if ref is None else (ref.q, ref.qd)
    loop.on_state(t, t, ARM + FINGERS, np.r_[q, width / 2, width / 2], np.r_[qd, 0.0, 0.0], t)
    if pose is not None:
        return loop.on_object_pose(t, t, frame, np.asarray(pose, float),
                                   t - 0.05 if stamp is None else stamp)
    return None


def serve(loop, t0, t1, **kw):
    """Tick every period in [t0, t1), inputs fed before each tick; the outputs."""
    out, t = [], t0
    while t < t1 - 1e-9:
        feed(loop, t, **kw)
        out.append(loop.tick(t, t))
        t += PERIOD
    return out


def test_a_pick_bundle_serves_the_arm_and_sends_the_hand_once_per_change(spec):
    loop = make(spec, g=1.0)
    out = serve(loop, 0.0, 0.4)
    assert all(o.reason == 'ok' for o in out)
    close = GripperSpec.from_yaml(spec['action']['gripper']).close_command()
    assert out[0].gripper == close and close.action == GRASP and close.force == 20.0
    assert all(o.gripper is None for o in out[1:])  # sent on change, not per tick
    assert out[-1].trajectory is not None
    assert np.abs(out[-1].plan.at(out[-1].plan.t0).qd).max() > 0.05
    loop.policy = ConstPolicy((0.0, 0.0, 0.0), 0.2)  # inside the hysteresis band: nothing
    assert all(o.gripper is None for o in serve(loop, 0.4, 0.6))
    loop.policy = ConstPolicy((0.0, 0.0, 0.0), -1.0)
    out = serve(loop, 0.6, 0.8)
    assert out[0].gripper.action == MOVE and out[0].gripper.width == pytest.approx(0.08)
    assert all(o.gripper is None for o in out[1:])
    values = loop.values(0.8)
    assert values['gripper_commands'] == 2 and values['gripper_closed'] is False
    assert values['object_pose_age_ms'] == pytest.approx(40.0)
    status = loop.goal_status()  # the cube, not the hand, is what must reach the goal
    assert status['distance'] == pytest.approx(np.linalg.norm(CUBE[:3] - GOAL))


@pytest.mark.parametrize('fault', ['stale', 'nan', 'unset_quaternion', 'other_frame',
                                   'old_stamp'])
def test_a_stale_or_bad_object_pose_brakes_the_arm_and_opens_nothing(spec, fault):
    """The issue's must-show: the object-pose watchdog brakes, the hand keeps its command."""
    loop = make(spec, g=1.0)
    out = serve(loop, 0.0, 0.64)
    assert out[0].gripper is not None and loop.task_io.hand.switch.closed  # holding
    t = 0.64
    if fault == 'stale':  # the tracker dies after 0.6 s; the joint states go on
        out = serve(loop, 0.64, 0.8, pose=None)
        assert [o.reason for o in out] == ['ok'] * 4  # up to 0.16 s without one: not stale
        t = 0.84  # 0.24 s: stale (object_stale_s 0.2)
    loop.policy = ConstPolicy((0.8, 0.0, 0.0), -1.0)  # the policy would open now
    bad = {'stale': None, 'nan': np.r_[CUBE[:2], np.nan, CUBE[3:]],
           'unset_quaternion': np.r_[CUBE[:3], 0.0, 0.0, 0.0, 0.0],
           'other_frame': CUBE, 'old_stamp': CUBE}[fault]
    refused = feed(loop, t, pose=bad, frame='camera' if fault == 'other_frame' else
                   'panda_link0', stamp=t - 0.5 if fault == 'old_stamp' else None)
    want = {'stale': 'stale_object_pose', 'old_stamp': 'old_object_stamp'}.get(
        fault, 'bad_object_pose')
    assert refused == (None if fault in ('stale', 'old_stamp') else 'bad_object_pose')
    assert loop.inputs_failed(t, t)  # the node's watchdog brakes at once, not next tick
    stop = loop.tick(t, t)
    assert stop.reason == want
    assert stop.gripper is None and loop.task_io.hand.switch.closed  # nothing opened
    assert stop.plan is not None and stop.plan.braking  # a brake from the motion, to rest
    assert np.abs(stop.plan.at(stop.plan.t0).qd).max() > 0.05
    end = stop.plan.at(stop.plan.end)
    assert np.all(end.qd == 0.0) and np.all(end.qdd == 0.0)
    level, message, _, values = diagnostics.report(loop, True, '', 'panda',
                                                   diagnostics.LatencyStats(), t, t)
    assert level == diagnostics.WARN and want in message
    if fault in ('nan', 'unset_quaternion', 'other_frame'):
        assert values['object_pose_error'] and values['object_pose_refused'] == 1
    # the watchdog alone held the open: a good pose again, and the policy's open goes out
    t += PERIOD
    feed(loop, t)
    again = loop.tick(t, t)
    assert again.reason == 'ok' and again.gripper is not None and again.gripper.action == MOVE


@pytest.mark.parametrize('stop', ['estop', 'deactivate'])
def test_an_estop_or_a_deactivation_brakes_and_opens_nothing(spec, stop):
    """The inputs are good and the policy runs, but the gate stops: the hand stays closed."""
    loop = make(spec, g=1.0)
    serve(loop, 0.0, 0.4)
    loop.policy = ConstPolicy((0.8, 0.0, 0.0), -1.0)
    loop.safety.estop() if stop == 'estop' else loop.deactivate()
    out = serve(loop, 0.4, 0.6)
    assert out[0].reason == ('estop' if stop == 'estop' else 'inactive') and out[0].plan.braking
    assert all(o.gripper is None for o in out) and loop.task_io.hand.switch.closed


@pytest.mark.parametrize('missing', ['object_pose', 'fingers'])
def test_never_received_inputs_never_move_the_arm_or_the_hand(spec, missing):
    loop = make(spec, g=1.0)
    for k in range(10):
        t = k * PERIOD
        if missing == 'object_pose':
            feed(loop, t, pose=None)
        else:  # the arm's joint states without the gripper's
            loop.on_state(t, t, ARM, PANDA.home.copy(), np.zeros(7), t)
            loop.on_object_pose(t, t, 'panda_link0', CUBE, t)
        out = loop.tick(t, t)
        assert out.reason == ('no_object_pose' if missing == 'object_pose'
                              else 'no_gripper_state')
        assert out.trajectory is None and out.gripper is None
    assert not loop.task_io.hand.switch.closed and loop.task_io.hand.sent == {}


def test_a_bad_finger_state_brakes_like_a_bad_arm_state(spec):
    loop = make(spec, g=1.0)
    serve(loop, 0.0, 0.4)
    feed(loop, 0.4, width=float('nan'))
    stop = loop.tick(0.4, 0.4)
    assert stop.reason == 'bad_gripper_state' and stop.plan.braking and stop.gripper is None
    serve(loop, 0.44, 0.48)
    feed(loop, 0.48, width=0.2)  # 10 cm per finger: no Franka Hand's
    assert loop.tick(0.48, 0.48).reason == 'bad_gripper_state'


def test_a_permuted_arm_cannot_serve_an_end_effector_action(spec):
    order = ['panda_joint2', 'panda_joint1', *ARM[2:]]
    with pytest.raises(ServeError, match='ee_velocity action needs the panda arm joints'):
        ServingLoop(spec, ConstPolicy((0, 0, 0), 0), ServeSettings(robot_joints=order))


class Recording:
    """The scripted pick (a memoryless function of the observation) as the served actor."""

    def __init__(self, env):
        u = env.unwrapped
        self.script = ScriptedPickPlace(u.contract.obs_spec, u.contract.act_spec, u.profile)
        self.seen, self.answered = [], []

    def act(self, obs):
        a = self.script.act(obs)
        self.seen.append(np.array(obs))
        self.answered.append(np.array(a))
        return a


def test_the_served_observation_and_command_are_the_envs_on_the_same_state(env, spec):
    """Every tick: the server's observation (joints with fingers, tracked pose, hand command,
    goal, last action) is the env's vector bit for bit, its Cartesian action becomes the joint
    velocity target the env commands on the same measured joints, and the hand is commanded on
    the same ticks."""
    u = env.unwrapped
    obs, _ = env.reset(seed=3, options={'cube': CUBE, 'goal': GOAL})
    policy = Recording(env)
    loop = ServingLoop(spec, policy, ServeSettings(ramp_in_s=0.0))
    policy.seen.clear()
    policy.answered.clear()
    loop.activate(0.0)
    assert loop.on_goal('panda_link0', GOAL) is None
    sent = {'served': 0, 'env': 0}
    for k in range(90):
        now = u.sim.t
        names, q, qd, _ = u.sim.joint_state()
        loop.on_state(now, now, names, q, qd, now)
        stamp, pose = u.tracker.measure(u.cell.t, u.cell.history)
        assert loop.on_object_pose(now, now, 'panda_link0', pose, stamp) is None
        out = loop.tick(now, now)
        assert out.reason == 'ok', (k, out.reason)
        np.testing.assert_array_equal(policy.seen[-1],
                                      np.r_[obs['observation'], obs['desired_goal']])
        before = u.cell.hand.commands
        obs, *_ = env.step(policy.answered[-1])
        np.testing.assert_allclose(loop.actions[0], u._actions[0], rtol=0, atol=1e-12)
        assert out.trajectory is not None  # the reach path: shaper -> JointTrajectory
        sent['served'] += out.gripper is not None
        sent['env'] += u.cell.hand.commands - before
        assert (out.gripper is not None) == (u.cell.hand.commands > before), k
    assert sent['served'] == sent['env'] >= 1  # the scripted pick closed the hand
    assert loop.task_io.hand.switch.closed == u.switch.closed


def test_the_node_messages_round_trip():
    """PoseStamped in (x, y, z, qx, qy, qz, qw; stamp), the hand's JSON command out."""
    pytest.importorskip('rclpy')
    from rl_control.robots.franka_hand import GripperCommand
    from rl_control.ros import conversions as conv

    msg = conv.pose_stamped(CUBE, 'panda_link0', conv.sec_to_stamp(12.5))
    frame, pose, stamp = conv.pose_array(msg)
    assert frame == 'panda_link0' and stamp == 12.5
    np.testing.assert_array_equal(pose, CUBE)
    close = GripperSpec().close_command()
    assert GripperCommand.from_json(conv.gripper_string(close).data) == close


def test_a_pick_bundle_saves_loads_and_serves_and_a_wrong_size_is_still_refused(env, tmp_path):
    """An ee_velocity + gripper action has 4 entries but 7 per-joint scales (bundle/io.py)."""
    import yaml

    from rl_control.bundle.io import BundleError, load_bundle

    path = save_zero_pick_bundle(env, tmp_path / 'pick')
    spec, policy = load_bundle(path)
    loop = ServingLoop(spec, policy, ServeSettings())
    assert loop.task_io.object is not None and loop.task_io.hand is not None
    text = (path / 'policy.yaml').read_text()
    bad = yaml.safe_load(text)
    bad['action']['scale'] = bad['action']['scale'][:6]
    (path / 'policy.yaml').write_text(yaml.safe_dump(bad))
    with pytest.raises(BundleError, match='action.scale: 6 values for 7 joints'):
        load_bundle(path)
    bad = yaml.safe_load(text)
    del bad['action']['gripper']
    (path / 'policy.yaml').write_text(yaml.safe_dump(bad))
    with pytest.raises(BundleError, match='ee_velocity action of size 4'):
        load_bundle(path)
