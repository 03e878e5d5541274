"""Pick and place with the Franka hand in MuJoCo: the env, the scripted pick and the episode
measures (grasped, dropped, held); the hand and tracker are in test_pick_place_hand.py."""
import gymnasium as gym
import numpy as np
import pytest

import rl_control.envs  # noqa: F401  (registers the env ids)
from rl_control.envs import pick_metrics
from rl_control.envs.pick_metrics import CUBE_HALF, PickTrace
from rl_control.envs.reach_metrics import HOLD_S
from rl_control.envs.scripted_pick import ScriptedPickPlace, stall_width
from rl_control.robots.franka_hand import HAND

ENV_ID = 'rl_control/FrankaPickPlace-v1'
PERIOD = 0.04
GOAL = np.array([0.6, 0.0, 0.12])


@pytest.fixture(scope='module')
def env():
    e = gym.make(ENV_ID)
    yield e
    e.close()


def _policy(env):
    u = env.unwrapped
    return ScriptedPickPlace(u.contract.obs_spec, u.contract.act_spec, u.profile)


def _full(obs):
    """The policy's observation: the env's vector, then the goal (the contract's last term)."""
    return np.r_[obs['observation'], obs['desired_goal']]


def _episode(env, act, seed, options=None):
    """Run `act(obs_vector)` to the time limit; (episode_result, infos)."""
    obs, info = env.reset(seed=seed, options=options)
    infos, done = [info], False
    while not done:
        obs, _, terminated, truncated, info = env.step(act(_full(obs)))
        infos.append(info)
        done = terminated or truncated
    return env.unwrapped.episode_result(), infos


# -- the env -----------------------------------------------------------------------------------
def test_the_env_builds_resets_and_steps_with_the_contracts_spaces(env):
    u = env.unwrapped
    assert env.action_space.shape == (4,)  # end-effector velocity, then the gripper's entry
    obs, info = env.reset(seed=1)
    assert obs['observation'].shape == env.observation_space['observation'].shape
    assert u.contract.obs_spec.size == obs['observation'].size + 3  # the goal comes last
    assert np.all(np.isfinite(obs['observation'])) and not info['is_success']
    lo, hi = u.task.goal_region()
    assert np.all(obs['desired_goal'] >= lo - 1e-6) and np.all(obs['desired_goal'] <= hi + 1e-6)
    # The achieved goal is the tracked cube: on the table, inside the start box.
    assert obs['achieved_goal'][2] == pytest.approx(CUBE_HALF, abs=0.01)
    steps = 0
    truncated = False
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        steps += 1
        assert not terminated and reward <= 0.0
    assert steps == 150  # 6 s at 25 Hz
    # The arm and hand never moved (zero action, open hand): nothing grasped, nothing sent.
    assert not info['grasped'] and u.cell.hand.commands == 0
    assert u.cell.width() == pytest.approx(HAND.max_width, abs=1e-3)


def test_reset_options_place_the_cube_and_goal_and_the_reward_is_vectorized(env):
    u = env.unwrapped
    cube = np.r_[0.5, 0.1, CUBE_HALF, 0.0, 0.0, 0.0, 1.0]
    obs, _ = env.reset(seed=2, options={'cube': cube, 'goal': GOAL})
    np.testing.assert_allclose(u.cell.cube_pose(), cube, atol=1e-9)
    np.testing.assert_allclose(obs['desired_goal'], GOAL, atol=1e-6)
    np.testing.assert_allclose(obs['achieved_goal'], cube[:3], atol=0.01)  # tracker noise
    # HER relabels in batches: one reward per row, -1 outside the distance, > -1 inside at rest.
    ag = np.array([GOAL, GOAL + [0.2, 0.0, 0.0]])
    info = {'joint_speed': np.zeros(2), 'ee_speed': np.zeros(2), 'cube_speed': np.zeros(2),
            'motion': np.zeros(2)}
    r = u.compute_reward(ag, np.array([GOAL, GOAL]), info)
    assert r.shape == (2,) and r[1] == -1.0 and r[0] == pytest.approx(0.0)


# -- the scripted pick: solvable, and the measures on real episodes -----------------------------
def test_the_scripted_pick_places_and_holds_the_cube_on_most_seeds(env):
    results = []
    for seed in range(6):
        res, infos = _episode(env, _policy(env).act, seed)
        results.append(res)
        # The env's per-step verdict agrees with the episode's measure.
        assert infos[-1]['is_success'] == res['success']
        if res['success']:
            assert res['grasped'] and res['lifted'] and not res['dropped']
            assert res['final_distance'] <= 0.05 and res['reflex'] is None
            assert res['grasp_time_s'] is not None and res['grasp_time_s'] > 0.5  # hand is slow
            assert res['hand_commands'] >= 1
    assert sum(r['success'] for r in results) >= 5, [r['final_distance'] for r in results]
    s = pick_metrics.summarize(results)
    assert s['episodes'] == 6 and s['success'] >= 5 / 6 and s['dropped'] == 0.0


def test_grasp_detection_on_a_scripted_episode_follows_the_pads_and_width(env):
    u = env.unwrapped
    cube = np.r_[0.55, -0.05, CUBE_HALF, 0.0, 0.0, 0.0, 1.0]
    res, infos = _episode(env, _policy(env).act, 4, {'cube': cube, 'goal': GOAL})
    flags = [i['grasped'] for i in infos[1:]]
    first = flags.index(True)
    assert not any(flags[:first]) and first * PERIOD > 0.5  # open on the way down
    assert res['grasp_time_s'] == pytest.approx((first + 1) * PERIOD)
    assert all(flags[first + 5:])  # held to the end
    assert u.cell.contacts()['pads'] == (True, True)
    assert res['success'] and res['lifted']


def test_a_hand_closed_on_nothing_is_not_a_grasp(env):
    u = env.unwrapped

    def close_in_the_air(obs):
        return np.array([0.0, 0.0, 0.0, 1.0], np.float32)

    res, infos = _episode(env, close_in_the_air, 5)
    assert u.cell.width() < 0.005  # it did close, at home, far above the cube
    assert not any(i['grasped'] for i in infos) and not res['grasped'] and not res['success']
    assert u.cell.hand.commands == 1  # one change, one command


class _Dropper(ScriptedPickPlace):
    """The scripted pick until the cube is lifted, then 6 cm above the goal, then open there."""

    def __init__(self, env, goal):
        u = env.unwrapped
        super().__init__(u.contract.obs_spec, u.contract.act_spec, u.profile)
        self.cell, self.over = u.cell, np.asarray(goal) + [0.0, 0.0, 0.06]
        self.carrying = self.released = False

    def target(self, obs):
        if not self.carrying:
            closed = obs[self.sl['gripper_command']][0] > 0
            self.carrying = closed and self.cell.cube_pose()[2] - CUBE_HALF > 0.01
        if not self.carrying:
            return super().target(obs)
        err = self.over - obs[self.sl['ee_pos']]
        self.released = self.released or np.linalg.norm(err) < 0.005
        if self.released:
            return np.zeros(3), -1.0  # stay, open
        return 5.0 * err * min(1.0, 0.04 / np.linalg.norm(err)), 1.0


def test_a_scripted_drop_is_a_failed_dropped_episode_though_the_cube_rests_at_the_goal(env):
    """Pick, carry to 6 cm above a goal on the table, let go: the cube comes to rest within 5 cm
    of the goal (held by distance and rest alone) but it was dropped."""
    u = env.unwrapped
    cube = np.r_[0.6, -0.08, CUBE_HALF, 0.0, 0.0, 0.0, 1.0]
    goal = np.array([0.6, 0.0, CUBE_HALF])
    dropper = _Dropper(env, goal)
    res, infos = _episode(env, dropper.act, 6, {'cube': cube, 'goal': goal})
    assert dropper.released and res['grasped'] and res['lifted']
    assert res['dropped'] and infos[-1]['dropped']
    assert not res['success'] and not infos[-1]['is_success']
    # Without the drop rule it would count: near the goal, everything at rest.
    assert res['final_distance'] <= 0.05 and res['final_cube_speed'] < 0.005
    assert np.linalg.norm(u.cell.cube_pose()[:3] - goal) <= 0.05
    assert pick_metrics.summarize([res])['dropped'] == 1.0


# -- the measures on synthetic traces -----------------------------------------------------------
def _trace(cube_of_t, grasped_of_t, qd_of_t=lambda t: np.zeros(7), seconds=4.0, goal=GOAL):
    """Sample a scripted cube path every control period; the hand carries it while grasped."""
    tr = PickTrace(goal, 0.05, start_ee=cube_of_t(0.0))
    for k in range(1, int(round(seconds / PERIOD)) + 1):
        t = k * PERIOD
        cube = cube_of_t(t)
        prev = cube_of_t(t - PERIOD)
        tr.add(t, cube, float(np.linalg.norm(cube - prev)) / PERIOD, cube + [0, 0, 0.004],
               qd_of_t(t), grasped_of_t(t))
    return tr.result()


START = np.array([0.5, 0.0, CUBE_HALF])


def _carry(t, to=GOAL, at=2.0):
    return START + (to - START) * min(t / at, 1.0)


def test_held_needs_the_cube_near_the_goal_and_at_rest_for_the_whole_last_second():
    r = _trace(_carry, lambda t: t > 0.2)
    assert r['success'] and r['held'] and r['grasped'] and r['lifted'] and not r['dropped']
    assert r['settle_time_s'] == pytest.approx(2.04)
    assert r['grasp_time_s'] == pytest.approx(0.24)
    # Still moving in the last second (arrives at 3.2 s of 4): placed, not held.
    late = _trace(lambda t: _carry(t, at=3.2), lambda t: t > 0.2)
    assert late['placed'] and not late['held'] and not late['success']
    # At the goal but the arm moves (0.05 rad/s) in the last second: not held.
    arm = _trace(_carry, lambda t: t > 0.2, qd_of_t=lambda t: np.full(7, 0.05 * (t > 3.5)))
    assert arm['placed'] and not arm['success']
    # 5.1 cm short of the goal, at rest: not placed, not held.
    short = GOAL - [0.051, 0.0, 0.0]
    far = _trace(lambda t: _carry(t, to=short), lambda t: t > 0.2)
    assert not far['placed'] and not far['success']
    assert far['final_distance'] == pytest.approx(0.051)


def test_a_cube_let_go_in_the_air_is_dropped_and_one_put_down_is_not():
    def fall_at(t_open, height):
        def cube(t):
            up = START + [0.0, 0.0, height * min(t, 1.0)]
            if t <= t_open:
                return up
            return np.r_[up[:2], max(CUBE_HALF, up[2] - 4.9 * (t - t_open) ** 2)]
        return cube

    # Lifted to 10 cm, opened at 1.5 s: dropped at the first sample after, failed ever after
    # (the goal is where it lands: within the distance, at rest, still a failure).
    landed = np.r_[START[:2], CUBE_HALF]
    r = _trace(fall_at(1.5, 0.1), lambda t: 0.2 < t <= 1.5, goal=landed)
    assert r['dropped'] and r['drop_time_s'] == pytest.approx(1.52)
    assert r['final_distance'] == pytest.approx(0.0) and not r['success']
    # Lowered back onto the table and let go there (1 cm at most): placed, not dropped.
    def put_down(t):
        return START + [0.0, 0.0, 0.1 * min(t, 1.0) - 0.1 * min(max(t - 1.0, 0.0), 1.0)]
    ok = _trace(put_down, lambda t: 0.2 < t <= 2.2, goal=START)
    assert not ok['dropped'] and ok['success']
    # Pushed off the table: dropped though never lifted.
    off = _trace(lambda t: START + [0.0, 0.0, -0.1 * max(t - 2.0, 0.0)], lambda t: False)
    assert off['dropped'] and not off['lifted'] and not off['grasped']


def test_grasped_means_both_pads_on_the_cube_with_the_cube_between_them():
    size = 2 * CUBE_HALF
    assert pick_metrics.grasped((True, True), size)
    assert pick_metrics.grasped((True, True), stall_width([0, 0, np.sin(0.125), np.cos(0.125)]))
    assert not pick_metrics.grasped((True, False), size)  # one finger brushing it
    assert not pick_metrics.grasped((True, True), 0.07)  # wider than its diagonal
    assert not pick_metrics.grasped((True, True), 0.02)  # the pads through it: not a grasp
    assert stall_width([0, 0, 0, 1]) == pytest.approx(size)
    yaw = np.pi / 4
    assert stall_width([0, 0, np.sin(yaw / 2), np.cos(yaw / 2)]) == pytest.approx(
        size * np.sqrt(2))


def test_the_env_sends_the_gripper_once_per_change_and_noise_near_zero_sends_nothing(env):
    u = env.unwrapped
    env.reset(seed=7)
    rng = np.random.default_rng(0)
    for g in rng.uniform(-0.25, 0.25, 20):  # chatter inside the band
        env.step(np.array([0.0, 0.0, 0.0, g], np.float32))
    assert u.cell.hand.commands == 0 and u.cell.width() == pytest.approx(0.08, abs=1e-3)
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([0.0, 0.0, 0.0, 1.0], np.float32))
    assert u.cell.hand.commands == 1
    obs = env.unwrapped._observe()['observation']
    assert obs[u._obs_spec.term_slice('gripper_command')][0] == 1.0


def test_the_env_draws_the_tracker_delay_and_noise_from_its_ranges(env):
    u = env.unwrapped
    r = u.randomization
    delays = []
    for seed in range(5):
        env.reset(seed=seed)
        d = u._ep['draws']
        assert r.tracker_delay_s[0] <= d['tracker_delay_s'] <= r.tracker_delay_s[1]
        assert r.hand_latency_s[0] <= u.cell.hand.latency_s <= r.hand_latency_s[1]
        assert u.tracker.delay_s == d['tracker_delay_s']
        delays.append(d['tracker_delay_s'])
    assert len(set(delays)) == 5
    nominal = gym.make(ENV_ID, randomize=False).unwrapped
    cube = np.r_[0.6, 0.1, CUBE_HALF, 0.0, 0.0, 0.0, 1.0]
    obs, _ = nominal.reset(seed=0, options={'cube': cube, 'goal': GOAL})
    np.testing.assert_allclose(obs['achieved_goal'], cube[:3], atol=1e-6)  # no noise
    assert nominal.tracker.delay_s == pytest.approx(0.05) and HOLD_S == 1.0
    nominal.close()


def test_ramming_the_table_raises_the_collision_reflex_and_a_careful_pick_does_not(env):
    u = env.unwrapped
    env.reset(seed=0, options={'cube': np.r_[0.7, 0.1, CUBE_HALF, 0.0, 0.0, 0.0, 1.0]})
    for _ in range(25):  # straight down at full speed, hand open, 20 cm above the table
        _, _, _, _, info = env.step(np.array([0.0, 0.0, -1.0, -1.0], np.float32))
    assert u.cell.contacts()['hand_table']
    assert info['reflexes'] > 0 and info['reflex'] in ('joint_reflex', 'cartesian_reflex')
    assert u.episode_result()['contact_reflexes'] > 0
    res, infos = _episode(env, _policy(env).act, 0)
    assert res['success'] and infos[-1]['reflexes'] == 0 and res['contact_reflexes'] == 0


def test_an_episode_started_grasped_holds_the_cube_in_the_closed_hand(env):
    u = env.unwrapped
    env.reset(seed=1, options={'grasped': True})
    assert u.switch.closed
    for k in range(25):  # up 10 cm (0.4 s), then stay, hand closed
        _, _, _, _, info = env.step(np.array([0.0, 0.0, 0.8 if k < 10 else 0.0, 1.0],
                                             np.float32))
    assert info['grasped'] and not info['dropped'] and u.cell.hand.commands == 1
    np.testing.assert_allclose(u.cell.cube_pose()[:3], u.true_ee_position() - [0, 0, 0.005],
                               atol=0.005)


def test_a_snapshot_mid_episode_resumes_exactly(env):
    """Checkpoints resume mid-episode: arm, hand, cube, tracker (and the pose history it reads
    from, which the first version left out), RNG."""
    u = env.unwrapped
    pick = _policy(env)
    obs, _ = env.reset(seed=3)
    for _ in range(60):  # carrying the cube: the tracker reads poses from before the snapshot
        obs, *_ = env.step(pick.act(_full(obs)))
    snap = u.state_dict()

    def run(obs):
        rows = []
        for _ in range(20):
            obs, reward, _, _, info = env.step(pick.act(_full(obs)))
            rows.append(np.r_[obs['observation'], reward, info['grasped']])
        return np.array(rows)

    first = run(obs)
    u.load_state_dict(snap)
    np.testing.assert_array_equal(run(obs), first)
