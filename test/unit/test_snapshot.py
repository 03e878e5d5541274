"""Env snapshots: a checkpoint mid-episode changes nothing about what is learned."""
import numpy as np
import pytest
from safetensors.numpy import load_file

from rl_control.envs.factory import make_env, make_vec_env
from rl_control.envs.snapshot import env_state, set_env_state, vector_env_state
from rl_control.train.config import config_from_dict
from rl_control.train.learn import train
from rl_control.train.logger import read_progress


def _rollout(env, actions):
    out = []
    for a in actions:
        obs, rew, term, trunc, _ = env.step(a)
        flat = np.concatenate([np.ravel(v) for v in obs.values()]) if isinstance(obs, dict) \
            else np.ravel(obs)
        out.append((flat, rew, term, trunc))
    return out


@pytest.mark.parametrize('env_id', ['Pendulum-v1', 'Hopper-v5', 'rl_control/PandaJointReach-v0',
                                    'rl_control/FrankaReach-v1', 'rl_control/FrankaReachEffort-v1',
                                    'rl_control/PandaJointReachBullet-v0'])
def test_snapshot_continues_an_episode_exactly(env_id):
    env, twin = make_env(env_id), make_env(env_id)
    env.reset(seed=4)
    twin.reset(seed=99)  # a different episode: the snapshot must overwrite all of it
    rng = np.random.default_rng(0)
    for a in rng.uniform(-1, 1, (7, *env.action_space.shape)):
        env.step(a.astype(np.float32))
    snap = env_state(env)
    assert snap is not None
    set_env_state(twin, snap)
    actions = rng.uniform(-1, 1, (30, *env.action_space.shape)).astype(np.float32)
    a, b = _rollout(env, actions), _rollout(twin, actions)
    for (oa, ra, ta, ua), (ob, rb, tb, ub) in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa, ob)
        assert (ra, ta, ua) == (rb, tb, ub)
    # the TimeLimit counter came along: both truncate at the same step
    env.close()
    twin.close()


def test_pybullet_panda_gym_envs_report_no_snapshot():
    pytest.importorskip('panda_gym')
    envs = make_vec_env('PandaReach-v3', 1, 0)
    try:
        envs.reset(seed=0)
        assert vector_env_state(envs) is None
    finally:
        envs.close()


def _run(tmp_path, name, checkpoint_every, env, extra):
    cfg = config_from_dict({
        'env': env, 'algo': 'sac', 'seed': 5, 'total_steps': 400, 'n_envs': 2,
        'checkpoint_every': checkpoint_every, 'eval': {'every': 200, 'episodes': 2},
        'tensorboard': False, **extra})
    out = tmp_path / name
    train(cfg, out, progress=False)
    return load_file(out / 'bundle' / 'actor.safetensors'), read_progress(out / 'progress.csv')


@pytest.mark.parametrize('env, extra', [
    ('Pendulum-v1', {'algo_kwargs': {'hidden_sizes': [16], 'batch_size': 16,
                                     'learning_starts': 50}}),
    # HER samples finished episodes only: training starts after the first (50 x 2 env steps).
    ('rl_control/PandaJointReach-v0', {
        'normalize_obs': True, 'her': {'strategy': 'future', 'k': 4},
        'algo_kwargs': {'hidden_sizes': [16], 'batch_size': 16, 'learning_starts': 120}}),
])
def test_checkpoint_cadence_is_not_a_hyperparameter(tmp_path, env, extra):
    # 77 steps (odd, mid-episode for both envs): checkpoints at 78, 154, ... must not matter.
    wa, pa = _run(tmp_path, 'none', None, env, extra)
    wb, pb = _run(tmp_path, 'often', 77, env, extra)
    assert (tmp_path / 'often' / 'checkpoints' / 'latest').is_file()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    assert [r['eval_mean_return'] for r in pa] == [r['eval_mean_return'] for r in pb]


def test_a_classic_control_snapshot_imports_no_mujoco():
    # Start-up cost: checking whether a Pendulum env can be snapshotted must not import
    # gymnasium's MuJoCo env module (and mujoco with it).
    import subprocess
    import sys
    code = ('import sys, gymnasium as gym\n'
            'from rl_control.envs.snapshot import env_state\n'
            "assert env_state(gym.make('Pendulum-v1')) is not None\n"
            "print('gymnasium.envs.mujoco.mujoco_env' in sys.modules, 'mujoco' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ['False', 'False']
