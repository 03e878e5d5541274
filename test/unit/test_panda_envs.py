"""Panda reach envs on MuJoCo and PyBullet: API, contract, rewards, actuation, reachability."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from rl_control.contract.spec import build_observation
from rl_control.envs import reach_task
import rl_control.envs.panda_reach as pe
from rl_control.envs.registration import MAX_EPISODE_STEPS
from rl_control.robots.kinematics import fk
from rl_control.robots.profiles import PANDA

MUJOCO_ID = 'rl_control/PandaJointReach-v0'
BULLET_ID = 'rl_control/PandaJointReachBullet-v0'
BOTH = [MUJOCO_ID, BULLET_ID]


@pytest.fixture(params=BOTH, ids=['mujoco', 'bullet'])
def env(request):
    e = gym.make(request.param)
    yield e
    e.close()


def _ik(goal, q0, iters=200):
    """Damped least squares on `fk`, within limits: proves a goal is reachable."""
    q = q0.copy()
    for _ in range(iters):
        err = goal - fk(q)
        if np.linalg.norm(err) < 1e-4:
            break
        jac = (fk(q + np.eye(7) * 1e-6) - fk(q)).T / 1e-6
        q = q + jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(3), err)
        q = np.clip(q, PANDA.q_min + 0.05, PANDA.q_max - 0.05)
    return np.linalg.norm(goal - fk(q))


def _reach_action(env, obs):
    """A hand-written Jacobian controller speaking the env's action interface."""
    q = obs['observation'][:7].astype(np.float64)
    err = obs['desired_goal'] - obs['achieved_goal']
    jac = (fk(q + np.eye(7) * 1e-6) - fk(q)).T / 1e-6
    qd = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), 4.0 * err)
    return np.clip(qd / env.unwrapped.contract.act_spec.scale, -1, 1).astype(np.float32)


@pytest.mark.parametrize('env_id', BOTH)
def test_env_checker_passes(env_id):
    e = gym.make(env_id)
    check_env(e.unwrapped, skip_render_check=True)
    e.close()


def test_registration_spaces_and_time_limit(env):
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS == 50
    assert env.action_space == gym.spaces.Box(-1, 1, (7,), np.float32)
    obs, info = env.reset(seed=3)
    assert obs['observation'].shape == (17,) and obs['desired_goal'].shape == (3,)
    assert set(info) >= {'is_success', 'distance'}
    for t in range(50):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 49)
    contract = env.unwrapped.contract
    assert contract.control_period_s == pe.CONTROL_PERIOD_S == 0.04
    assert contract.obs_spec.terms == ('joint_pos', 'joint_vel', 'ee_pos', 'goal')
    assert contract.to_yaml()['action']['type'] == 'joint_velocity'


def test_policy_input_is_the_contract_vector(env):
    obs, _ = env.reset(seed=4)
    u = env.unwrapped
    for _ in range(5):
        names, q, qd, _ = u.sim.joint_state()
        assert set(PANDA.all_joint_names) == set(names)         # fingers are published too
        expected = build_observation(u.contract.obs_spec, names, q, qd, u.goal)
        np.testing.assert_array_equal(u.policy_input(obs), expected)
        np.testing.assert_array_equal(
            np.concatenate([obs['observation'], obs['desired_goal']]), expected)
        np.testing.assert_allclose(obs['achieved_goal'], fk(q[:7]), atol=1e-6)
        obs, *_ = env.step(env.action_space.sample())


@pytest.mark.parametrize('reward_type', ['sparse', 'dense'])
def test_step_reward_equals_compute_reward(reward_type):
    env = gym.make(MUJOCO_ID, reward_type=reward_type)
    obs, _ = env.reset(seed=5)
    achieved, desired, rewards, success = [], [], [], []
    for _ in range(50):
        obs, r, *_, info = env.step(_reach_action(env, obs))
        achieved.append(obs['achieved_goal'])
        desired.append(obs['desired_goal'])
        rewards.append(r)
        success.append(info['is_success'])
    batch = env.unwrapped.compute_reward(np.array(achieved), np.array(desired), {})
    assert batch.shape == (50,) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, np.array(rewards, np.float32))
    assert any(success)
    if reward_type == 'sparse':
        assert set(np.unique(batch)) <= {-1.0, 0.0}
        np.testing.assert_array_equal(batch == 0.0, np.array(success))
    else:
        d = np.linalg.norm(np.array(achieved) - np.array(desired), axis=-1)
        np.testing.assert_allclose(batch, -d, rtol=1e-6)
    # HER relabelling: achieved == desired is a success
    assert env.unwrapped.compute_reward(np.array(achieved), np.array(achieved), {}).max() == 0


def test_dense_ids_are_registered():
    for env_id in ('rl_control/PandaJointReachDense-v0',
                   'rl_control/PandaJointReachBulletDense-v0'):
        assert gym.spec(env_id).kwargs['reward_type'] == 'dense'


def test_reset_options_and_goal_setter(env):
    goal = np.array([0.5, 0.1, 0.2])
    obs, _ = env.reset(seed=0, options={'goal': goal, 'q': PANDA.home})
    np.testing.assert_allclose(obs['desired_goal'], goal, rtol=1e-6)
    np.testing.assert_allclose(obs['observation'][:7], PANDA.home, atol=1e-6)
    env.unwrapped.goal = [0.6, 0.0, 0.1]
    obs, *_ = env.step(np.zeros(7, np.float32))
    np.testing.assert_allclose(obs['desired_goal'], [0.6, 0.0, 0.1], rtol=1e-6)
    with pytest.raises(ValueError):
        env.unwrapped.goal = [np.nan, 0, 0]


def test_same_seed_same_start_on_both_engines():
    a, b = gym.make(MUJOCO_ID), gym.make(BULLET_ID)
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    np.testing.assert_allclose(oa['observation'], ob['observation'], atol=1e-6)
    np.testing.assert_array_equal(oa['desired_goal'], ob['desired_goal'])
    b.close()


@pytest.mark.parametrize('engine', ['mujoco', 'bullet'])
def test_fixed_velocity_moves_joint_by_v_dt(engine):
    if engine == 'mujoco':
        from rl_control.robots.mujoco_arm import MujocoArm
        sim = MujocoArm(PANDA)
    else:
        from rl_control.robots.bullet_panda import BulletPanda
        sim = BulletPanda()
    period = 0.04
    for j in range(7):
        for v in (0.4, -0.4):
            sim.reset()
            cmd = np.zeros(7)
            cmd[j] = v
            sim.set_joint_velocity_command(cmd)
            sim.step(period)              # settle: the servo needs a few ms to get up to speed
            q0 = sim.joint_state()[1][:7]
            sim.step(4 * period)
            dq = sim.joint_state()[1][:7] - q0
            assert dq[j] == pytest.approx(v * 4 * period, rel=0.05), (engine, j, v)
            others = np.delete(dq, j)
            assert np.abs(others).max() < 0.01, (engine, j, v, dq)
    if engine == 'bullet':
        sim.close()


def test_mujoco_velocity_command_is_clamped_and_effort_mode_holds():
    from rl_control.robots.mujoco_arm import MujocoArm
    sim = MujocoArm(PANDA)
    sim.set_joint_velocity_command(np.full(7, 10.0))
    sim.step(0.2)      # a servo, not a kinematic clamp: within 2% of the limit
    assert np.all(np.abs(sim.joint_state()[2][:7]) <= 1.02 * PANDA.qd_max)
    sim.set_control_mode('effort')
    sim.reset()
    sim.set_joint_effort_command(np.zeros(7))
    sim.step(0.5)                          # gravity compensated: the arm stays put
    np.testing.assert_allclose(sim.joint_state()[1][:7], PANDA.home, atol=1e-3)
    with pytest.raises(RuntimeError):
        sim.set_joint_velocity_command(np.zeros(7))


def test_goal_box_is_reachable():
    rng = np.random.default_rng(0)
    low, high = reach_task.GOAL_LOW, reach_task.GOAL_HIGH
    corners = np.array(np.meshgrid(*zip(low, high, strict=True)))
    corners = corners.reshape(3, -1).T
    goals = np.concatenate([corners, rng.uniform(low, high, (100, 3))])
    assert max(_ik(g, PANDA.home) for g in goals) < 1e-3


@pytest.mark.parametrize('env_id, episodes', [(MUJOCO_ID, 10), (BULLET_ID, 4)])
def test_reach_is_feasible_within_the_episode(env_id, episodes):
    """With the chosen action scale a simple controller succeeds well inside 50 steps."""
    env = gym.make(env_id)
    successes = 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=100 + ep)
        for _ in range(50):
            obs, _, _, truncated, info = env.step(_reach_action(env, obs))
        successes += info['is_success']
    env.close()
    assert successes == episodes


def test_step_duration_must_be_whole_timesteps():
    from rl_control.robots.mujoco_arm import MujocoArm
    sim = MujocoArm(PANDA)
    assert sim.timestep == pytest.approx(0.01)
    with pytest.raises(ValueError, match='timestep'):
        sim.step(0.001)                     # would silently run 10x too fast if rounded
    fine = MujocoArm(PANDA, timestep=0.001)
    fine.set_joint_velocity_command(np.full(7, 0.2))
    for _ in range(40):
        fine.step(0.001)
    assert fine.time == pytest.approx(0.04)
    assert fine.joint_state()[1][0] == pytest.approx(PANDA.home[0] + 0.2 * 0.04, abs=2e-3)
