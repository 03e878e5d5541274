"""Async (worker-process) vector envs give the same runs as sync ones, snapshots included."""
import numpy as np
import pytest
from safetensors.numpy import load_file

from rl_control.envs.factory import ProcessVectorEnv, make_vec_env, template_env
from rl_control.envs.snapshot import set_vector_env_state, vector_env_state
from rl_control.train.config import ConfigError, config_from_dict
from rl_control.train.learn import train
from rl_control.train.logger import read_progress
from rl_control.train.persistence import LATEST

OFF = {'hidden_sizes': [16], 'batch_size': 16, 'learning_starts': 120}
CASES = {
    'sac': {'env': 'Pendulum-v1', 'algo_kwargs': OFF},
    'ppo': {'env': 'Pendulum-v1', 'algo': 'ppo', 'normalize_reward': True,
            'algo_kwargs': {'hidden_sizes': [16], 'n_steps': 50, 'batch_size': 25,
                            'n_epochs': 2}},
    # dict observations, HER's compute_reward from the template env, 50-step episodes, and a
    # checkpoint every 77 steps (mid-episode): snapshots taken inside the workers
    'sac_her': {'env': 'rl_control/PandaJointReach-v0', 'normalize_obs': True,
                'her': {'strategy': 'future', 'k': 4}, 'algo_kwargs': OFF,
                'checkpoint_every': 77},
}
WALL = {'wall_s', 'steps_per_s'}


def _cfg(case, kind, **extra):
    raw = {'algo': 'sac', 'seed': 5, 'total_steps': 400, 'n_envs': 2, 'vec_env': kind,
           'eval': {'every': 100, 'episodes': 2}, 'tensorboard': False, **CASES[case]}
    raw.update(extra)
    return config_from_dict(raw)


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in WALL}
            for r in read_progress(run_dir / 'progress.csv')]


@pytest.mark.parametrize('case', sorted(CASES))
def test_sync_and_async_give_identical_runs(tmp_path, case):
    for kind in ('sync', 'async'):
        train(_cfg(case, kind), tmp_path / kind, progress=False)
    assert _rows(tmp_path / 'sync') == _rows(tmp_path / 'async')
    assert len(_rows(tmp_path / 'sync')) == 4
    a = load_file(tmp_path / 'sync' / 'bundle' / 'actor.safetensors')
    b = load_file(tmp_path / 'async' / 'bundle' / 'actor.safetensors')
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_an_async_checkpoint_resumes_with_sync_envs(tmp_path):
    train(_cfg('sac', 'sync', total_steps=600), tmp_path / 'full', progress=False)
    run = tmp_path / 'run'
    train(_cfg('sac', 'async', total_steps=600, checkpoint_every=300), run, progress=False)
    ckpts = run / 'checkpoints'
    (ckpts / 'ckpt_000000000600.pt').unlink()  # rewind to the mid-run (mid-episode) one
    (ckpts / LATEST).write_text('ckpt_000000000300.pt\n')
    train(_cfg('sac', 'sync', total_steps=600, checkpoint_every=300), run, resume=True,
          progress=False)
    a = load_file(tmp_path / 'full' / 'bundle' / 'actor.safetensors')
    b = load_file(run / 'bundle' / 'actor.safetensors')
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert _rows(tmp_path / 'full') == _rows(run)


def test_worker_snapshots_restore_into_a_sync_env():
    env_id = 'rl_control/FrankaReach-v1'  # shaper state, randomization, latency queue
    a = make_vec_env(env_id, 2, seed=4, kind='async')
    b = make_vec_env(env_id, 2, seed=4, kind='sync')
    try:
        assert isinstance(a, ProcessVectorEnv)
        a.reset(seed=4)
        b.reset(seed=99)  # other episodes: the snapshot must overwrite all of it
        rng = np.random.default_rng(0)
        shape = (2, *a.single_action_space.shape)
        for _ in range(7):
            a.step(rng.uniform(-1, 1, shape).astype(np.float32))
        states = vector_env_state(a)
        assert states is not None and len(states) == 2
        set_vector_env_state(b, states)
        for _ in range(60):  # past the 50-step time limit: autoreset in both
            act = rng.uniform(-1, 1, shape).astype(np.float32)
            oa, ra, ta, ua, ia = a.step(act)
            ob, rb, tb, ub, ib = b.step(act)
            for key in oa:
                np.testing.assert_array_equal(oa[key], ob[key])
            np.testing.assert_array_equal(ra, rb)
            assert (ta == tb).all() and (ua == ub).all()
            assert ('_final_obs' in ia) == ('_final_obs' in ib)
        # and back: a sync snapshot restores into the workers
        set_vector_env_state(a, vector_env_state(b))
        act = rng.uniform(-1, 1, shape).astype(np.float32)
        np.testing.assert_array_equal(a.step(act)[0]['observation'],
                                      b.step(act)[0]['observation'])
        assert repr(template_env(a).unwrapped.contract) == repr(template_env(b).unwrapped.contract)
    finally:
        a.close()
        b.close()


def test_async_envs_without_snapshots_report_none():
    pytest.importorskip('panda_gym')
    envs = make_vec_env('PandaReach-v3', 2, 0, kind='async')
    try:
        envs.reset(seed=0)
        assert vector_env_state(envs) is None  # the caller falls back to segment boundaries
    finally:
        envs.close()


def test_vec_env_kind_is_validated():
    with pytest.raises(ConfigError, match=r"vec_env: 'subproc' is not one of"):
        _cfg('sac', 'subproc')
    with pytest.raises(ValueError, match='unknown kind'):
        make_vec_env('Pendulum-v1', 1, kind='threads')
