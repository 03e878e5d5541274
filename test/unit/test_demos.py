"""Demonstrations in the replay buffer (train/demos.py, `demos:` in a config): whole episodes of
the env's demonstrator go into the buffer before the first step, are not counted as the agent's
env steps, are not collected again on a resume, and a config that cannot use them fails
naming the key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rl_control.train.config import ConfigError, config_from_dict
from rl_control.train.control import Callback
from rl_control.train.learn import train

T = 20  # steps per training episode


def pick_cfg(total: int = 60, **over) -> dict:
    return {'env': 'rl_control/FrankaPickPlace-v1', 'algo': 'sac', 'seed': 3,
            'total_steps': total, 'time_limit': T, 'normalize_obs': True,
            'her': {'strategy': 'future', 'k': 4}, 'demos': {'episodes': 2, 'noise': 0.0},
            'eval': {'every': 10_000, 'episodes': 1, 'time_limit': 5},
            'checkpoint_every': 40, 'tensorboard': False,
            'algo_kwargs': {'hidden_sizes': [16, 16], 'batch_size': 16,
                            'learning_starts': 30}, **over}


class Keep(Callback):
    """Keeps the run (the trainer) to look at its buffer afterwards."""

    def on_start(self, run) -> None:
        self.run = run


def test_demonstrations_fill_the_buffer_first_and_are_not_the_agents_steps(tmp_path: Path):
    keep = Keep()
    result = train(config_from_dict(pick_cfg()), tmp_path / 'run', progress=False,
                   callbacks=[keep])
    assert result.steps == 60  # the agent's own steps only
    buf = keep.run.buffer
    assert buf.total == 2 * T + 60
    grip = buf.act[:2 * T + 60, 0, -1]  # the gripper entry: the demonstrator's is exactly +-1
    assert np.all(np.abs(grip[:2 * T]) == 1.0)
    assert not np.all(np.abs(grip[2 * T:2 * T + 30]) == 1.0)  # then uniform warm-up actions
    demos = (tmp_path / 'run' / 'demos.json').read_text()
    assert '"episodes": 2' in demos and f'"steps": {2 * T}' in demos


def test_a_resumed_run_does_not_collect_them_again(tmp_path: Path):
    cfg = config_from_dict(pick_cfg(total=40))
    train(cfg, tmp_path / 'run', progress=False)
    first = (tmp_path / 'run' / 'demos.json').stat().st_mtime_ns
    keep = Keep()
    train(config_from_dict(pick_cfg(total=60)), tmp_path / 'run', resume=True,
          progress=False, callbacks=[keep])
    assert (tmp_path / 'run' / 'demos.json').stat().st_mtime_ns == first
    assert keep.run.buffer.total == 2 * T + 60


@pytest.mark.parametrize(('over', 'words'), [
    ({'algo': 'ppo', 'her': None, 'algo_kwargs': {}}, 'demos: demonstrations go into an'),
    ({'demos': {'episodes': 0}}, 'demos.episodes: must be > 0'),
    ({'demos': {'noise': -0.1}}, 'demos.noise: must be >= 0'),
    ({'demos': {'episode': 3}}, 'demos.episode'),
    ({'demos': {'bc_weight': -1.0}}, 'demos.bc_weight: must be >= 0'),
    ({'demos': {'bc_batch': 0}}, 'demos.bc_batch: must be > 0'),
    ({'algo': 'td3', 'demos': {'bc_weight': 1.0}}, 'demos.bc_weight: the behaviour-cloning'),
    ({'demos': {'dagger': True}}, 'demos.dagger: labels states'),
])
def test_a_config_that_cannot_use_them_names_the_key(over, words):
    with pytest.raises(ConfigError, match=words.replace('.', r'\.')):
        config_from_dict({**pick_cfg(), **over})


def test_behaviour_cloning_samples_the_noiseless_demonstrations_and_survives_a_resume(
        tmp_path: Path):
    over = {'demos': {'episodes': 2, 'noise': 0.3, 'bc_weight': 1.0, 'bc_batch': 8}}
    keep = Keep()
    train(config_from_dict(pick_cfg(total=40, **over)), tmp_path / 'run', progress=False,
          callbacks=[keep])
    demos = keep.run.collector.demos
    assert demos.obs.shape == (2 * T, keep.run.obs_dim) and demos.act.shape == (2 * T, 4)
    buf = keep.run.buffer.act[:2 * T, 0]
    assert np.all(np.abs(demos.act[:, -1]) == 1.0)  # the demonstrator's own hand commands
    assert not np.allclose(buf[:, :3], demos.act[:, :3])  # the buffer holds the noisy ones
    assert {'bc_loss', 'bc_kept'} <= set(keep.run.last_metrics)
    state = demos.state_dict()
    keep = Keep()
    train(config_from_dict(pick_cfg(total=60, **over)), tmp_path / 'run', resume=True,
          progress=False, callbacks=[keep])
    again = keep.run.collector.demos
    np.testing.assert_array_equal(again.obs, state['obs'])
    assert again.weight == 1.0 and again.batch == 8


def test_dagger_labels_every_agent_step_with_the_demonstrators_action(tmp_path: Path):
    over = {'demos': {'episodes': 1, 'noise': 0.0, 'bc_weight': 1.0, 'dagger': True}}
    keep = Keep()
    train(config_from_dict(pick_cfg(total=40, **over)), tmp_path / 'run', progress=False,
          callbacks=[keep])
    demos = keep.run.collector.demos
    assert demos.n == T + 40  # the demonstration, then each of the agent's 40 steps
    expert = keep.run.envs.envs[0].unwrapped.demo_policy()
    for row in (T, T + 17, T + 39):  # the agent's states, the expert's answers
        np.testing.assert_allclose(demos.act[row], expert.act(demos.obs[row]), atol=1e-6)
    buf = keep.run.buffer.act[T:T + 40, 0]
    assert not np.allclose(buf, demos.act[T:T + 40])  # the agent acted itself
    keep = Keep()
    train(config_from_dict(pick_cfg(total=60, **over)), tmp_path / 'run', resume=True,
          progress=False, callbacks=[keep])
    assert keep.run.collector.demos.n == T + 60  # labelling goes on after a resume


def test_an_env_without_a_demonstrator_is_refused_by_name(tmp_path: Path):
    cfg = config_from_dict({'env': 'Pendulum-v1', 'algo': 'sac', 'total_steps': 10,
                            'demos': {'episodes': 1}, 'tensorboard': False,
                            'algo_kwargs': {'hidden_sizes': [8]}})
    with pytest.raises(ValueError, match='has no demo_policy'):
        train(cfg, tmp_path / 'run', progress=False)


def test_the_pick_reward_reads_sb3s_per_transition_info_dicts_the_same():
    import gymnasium as gym

    env = gym.make('rl_control/FrankaPickPlace-v1').unwrapped
    rng = np.random.default_rng(0)
    n = 6
    cols = {'joint_speed': rng.uniform(0, 0.05, n), 'ee_speed': rng.uniform(0, 0.01, n),
            'cube_speed': rng.uniform(0, 0.01, n), 'motion': rng.uniform(0, 1, n)}
    a, g = rng.uniform(0.4, 0.5, (n, 3)), rng.uniform(0.4, 0.5, (n, 3))
    dicts = np.array([{k: float(v[i]) for k, v in cols.items()} for i in range(n)])
    np.testing.assert_allclose(env.compute_reward(a, g, dicts), env.compute_reward(a, g, cols))
    env.close()


def test_the_evaluation_envs_take_eval_env_kwargs_over_the_training_envs(tmp_path: Path):
    """A curriculum in training (half the episodes start with the cube in the hand) while the
    evaluations judge what the benchmark judges (from the table)."""
    keep = Keep()
    cfg = config_from_dict(pick_cfg(total=20, demos=None, env_kwargs={'start_grasped': 0.5},
                                    eval={'every': 10_000, 'episodes': 1, 'time_limit': 5,
                                          'env_kwargs': {'start_grasped': 0.0}}))
    train(cfg, tmp_path / 'run', progress=False, callbacks=[keep])
    assert keep.run.envs.envs[0].unwrapped.start_grasped == 0.5
    assert keep.run.evaluator.envs[0].unwrapped.start_grasped == 0.0
