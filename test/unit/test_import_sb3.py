"""`rl-control import-sb3`: a Stable-Baselines3 model becomes a bundle whose deterministic actions
are SB3's `predict(deterministic=True)`, and which the serving loop runs.

Models are trained for a few dozen updates only: the conversion, not the learning, is tested.
"""
from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest

sb3 = pytest.importorskip('stable_baselines3')

from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402
import torch  # noqa: E402

import rl_control  # noqa: E402, F401 - registers the env ids
from rl_control.bundle.io import load_bundle  # noqa: E402
from rl_control.cli import main  # noqa: E402
from rl_control.envs.factory import policy_input  # noqa: E402
from rl_control.interop.sb3 import Sb3ImportError, _actor_layers, import_sb3  # noqa: E402

REACH = 'rl_control/PandaJointReach-v0'
NET = {'net_arch': [32, 32]}


def train(tmp_path, algo, env_id, vecnorm=False, wrap=None, steps=120, **kwargs):
    """Train briefly; returns (model, VecNormalize or None) after saving both under tmp_path."""
    def make():
        env = gym.make(env_id)
        return wrap(env) if wrap else env

    venv = DummyVecEnv([make])
    if vecnorm:
        venv = VecNormalize(venv, norm_reward=False)
    cls = getattr(sb3, algo)
    policy = 'MultiInputPolicy' if isinstance(venv.observation_space, gym.spaces.Dict) \
        else 'MlpPolicy'
    if algo == 'PPO':
        kwargs = {'n_steps': 64, 'batch_size': 32, 'n_epochs': 2, **kwargs}
    else:
        kwargs = {'learning_starts': 40, 'batch_size': 32, 'buffer_size': 1000, **kwargs}
    kwargs['policy_kwargs'] = {**NET, **kwargs.get('policy_kwargs', {})}
    model = cls(policy, venv, seed=0, device='cpu', **kwargs)
    model.learn(steps)
    if algo == 'PPO':  # an initial PPO mean is ~0.01 x features: make the action clip matter
        with torch.no_grad():
            model.policy.action_net.weight.mul_(300.0)
    model.save(tmp_path / 'model.zip')
    if vecnorm:
        venv.save(str(tmp_path / 'vecnormalize.pkl'))
    return model, venv if vecnorm else None


def rollout_obs(env_id, n=400, seed=123):
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    while len(out) < n:
        out.append(obs)
        obs, _, term, trunc, _ = env.step(rng.uniform(env.action_space.low,
                                                      env.action_space.high))
        if term or trunc:
            obs, _ = env.reset(seed=seed + len(out))
    if isinstance(obs, dict):
        return {k: np.stack([o[k] for o in out]) for k in obs}
    return np.stack(out).astype(np.float32)


def assert_bundle_is_sb3(tmp_path, model, vn, env_id, flatten=None):
    """The imported bundle's actions (in the env's units) equal SB3's predict to 1e-5."""
    vnf = tmp_path / 'vecnormalize.pkl' if vn is not None else None
    result = import_sb3(tmp_path / 'model.zip', env_id, tmp_path / 'bundle', vecnormalize=vnf)
    spec, policy = load_bundle(result.bundle)
    obs = rollout_obs(env_id)
    sb3_obs = flatten(obs) if flatten else obs
    if vn is not None:
        sb3_obs = vn.normalize_obs(sb3_obs)
    want, _ = model.predict(sb3_obs, deterministic=True)
    a = policy.act(policy_input(obs))
    low, high = model.action_space.low, model.action_space.high
    got = low + (a.astype(np.float64) + 1.0) / 2.0 * (high - low)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert (spec['observation']['normalization'] is None) == (vn is None)
    return result, spec, policy


@pytest.mark.parametrize('algo, vecnorm', [('SAC', False), ('SAC', True), ('TD3', True),
                                           ('DDPG', False), ('PPO', True)])
def test_robot_env_dict_obs_model_equals_sb3_predict(tmp_path, algo, vecnorm):
    model, vn = train(tmp_path, algo, REACH, vecnorm)
    result, spec, policy = assert_bundle_is_sb3(tmp_path, model, vn, REACH)
    assert result.algorithm == spec['algorithm'] == algo.lower()
    # the contract, not SB3's 23-entry Dict order, is the bundle's observation
    assert [t['name'] for t in spec['observation']['terms']] == \
        ['joint_pos', 'joint_vel', 'ee_pos', 'goal']
    assert spec['network']['layers'][0] == [20, 32]
    assert spec['action']['type'] == 'joint_velocity'
    if vecnorm:
        norm = spec['observation']['normalization']
        assert norm['clip'] == vn.clip_obs and norm['epsilon'] == vn.epsilon
        np.testing.assert_array_equal(norm['mean'][:17], vn.obs_rms['observation'].mean)
        np.testing.assert_array_equal(norm['var'][17:], vn.obs_rms['desired_goal'].var)
    serve(spec, policy)


def test_franka_reach_her_model_keeps_the_robot_task(tmp_path):
    model, vn = train(tmp_path, 'SAC', 'rl_control/FrankaReach-v1', True,
                      replay_buffer_class=sb3.HerReplayBuffer, learning_starts=60)
    _, spec, policy = assert_bundle_is_sb3(tmp_path, model, vn, 'rl_control/FrankaReach-v1')
    task = gym.make('rl_control/FrankaReach-v1').unwrapped.robot_task
    assert spec['robot'] == 'panda' and spec['goal_region'] == task['goal_region']
    assert spec['shaper'] == task['shaper'] and spec['control_period_s'] == 0.04
    serve(spec, policy)


def serve(spec, policy):
    """The bundle drives the serving loop: a goal and a state in, a trajectory out."""
    from rl_control.robots.profiles import PANDA
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    loop = ServingLoop(spec, policy, ServeSettings())
    loop.activate(0.0)
    assert loop.on_goal('panda_link0', np.array([0.6, 0.1, 0.2])) is None
    out = None
    for k in range(5):
        t = 0.04 * k
        ref = loop.shaper.reference(t) if loop.shaper.anchored else None
        q, qd = (PANDA.home, np.zeros(7)) if ref is None else (ref.q, ref.qd)
        loop.on_state(t, t, list(PANDA.joint_names), np.asarray(q, float),
                      np.asarray(qd, float), t)
        out = loop.tick(t, t)
    assert out.reason == 'ok' and out.trajectory is not None


@pytest.mark.parametrize('vecnorm, kwargs', [
    (False, {}), (True, {}),
    (False, {'use_sde': True, 'policy_kwargs': {'squash_output': True}}),
    (False, {'policy_kwargs': {'activation_fn': torch.nn.ReLU}}),
])
def test_box_obs_ppo_equals_sb3_predict(tmp_path, vecnorm, kwargs):
    model, vn = train(tmp_path, 'PPO', 'Pendulum-v1', vecnorm, **kwargs)
    _, spec, policy = assert_bundle_is_sb3(tmp_path, model, vn, 'Pendulum-v1')
    assert spec['action'] == {'type': 'box', 'size': 1, 'scale': [2.0], 'low': [-2.0],
                              'high': [2.0]}
    assert spec['network']['output'] == ('tanh' if kwargs.get('use_sde') else 'clip')
    want = 'relu' if 'activation_fn' in kwargs.get('policy_kwargs', {}) else 'tanh'
    assert spec['network']['activation'] == want
    if not kwargs:  # the clip is really exercised
        assert np.mean(np.abs(policy.act(rollout_obs('Pendulum-v1'))) == 1.0) > 0.05


def test_flattened_dict_obs_uses_gymnasiums_key_order(tmp_path):
    # FlattenObservation: [achieved_goal, desired_goal, observation], the Dict's sorted order
    model, vn = train(tmp_path, 'SAC', REACH, True, wrap=gym.wrappers.FlattenObservation)
    space = gym.make(REACH).observation_space

    def flat(obs):
        return np.stack([gym.spaces.utils.flatten(space, {k: v[i] for k, v in obs.items()})
                         for i in range(len(obs['observation']))]).astype(np.float32)

    assert_bundle_is_sb3(tmp_path, model, vn, REACH, flatten=flat)


class Reordered(gym.ObservationWrapper):
    """The goal Dict with unsorted keys (OrderedDict): SB3 concatenates in THIS order."""

    ORDER = ('observation', 'desired_goal', 'achieved_goal')

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict(
            OrderedDict((k, env.observation_space[k]) for k in self.ORDER))

    def observation(self, obs):
        return OrderedDict((k, obs[k]) for k in self.ORDER)


def test_dict_key_order_is_read_from_the_model(tmp_path):
    model, vn = train(tmp_path, 'TD3', REACH, True, wrap=Reordered)
    assert list(model.observation_space.spaces) == list(Reordered.ORDER)
    assert_bundle_is_sb3(tmp_path, model, vn, REACH)


def test_achieved_goal_statistics_unlike_ee_pos_fold_affinely(tmp_path):
    model, vn = train(tmp_path, 'SAC', REACH, True)
    vn.obs_rms['achieved_goal'].mean += 0.05
    vn.obs_rms['achieved_goal'].var *= 1.5
    vn.save(str(tmp_path / 'vecnormalize.pkl'))
    result, _, _ = assert_bundle_is_sb3(tmp_path, model, vn, REACH)
    assert any('achieved_goal' in n and 'clip' in n for n in result.notes)


def test_cli_import_then_export_then_onnx_serves(tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    train(tmp_path, 'SAC', REACH, True)
    out = tmp_path / 'bundle'
    assert main(['import-sb3', str(tmp_path / 'model.zip'), '--env', REACH, '--vecnormalize',
                 str(tmp_path / 'vecnormalize.pkl'), '--out', str(out)]) == 0
    assert 'matches SB3 predict' in capsys.readouterr().out
    assert main(['export', str(out), '--format', 'onnx']) == 0
    spec, ref = load_bundle(out)
    assert spec['trained_with']['command'].startswith('rl-control import-sb3 ')
    assert spec['trained_with']['config']['imported_from']['library'] == 'stable-baselines3'
    _, rt = load_bundle(out, backend='onnx')
    obs = policy_input(rollout_obs(REACH, 200))
    np.testing.assert_allclose(rt.act(obs), ref.act(obs), atol=1e-5, rtol=0)
    serve(spec, rt)


def _fails(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('rl-control: error: ')
    return err


def test_refusals_are_one_line_naming_the_cause(tmp_path, capsys):
    a2c = sb3.A2C('MlpPolicy', 'Pendulum-v1', device='cpu')
    a2c.save(tmp_path / 'a2c.zip')
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'a2c.zip'), '--env', 'Pendulum-v1',
                          '--out', str(tmp_path / 'x')])
    assert 'a2c.zip' in err and 'A2C' in err
    sde = sb3.SAC('MultiInputPolicy', gym.make(REACH), use_sde=True, device='cpu', buffer_size=10)
    sde.save(tmp_path / 'sde.zip')
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'sde.zip'), '--env', REACH,
                          '--out', str(tmp_path / 'x')])
    assert 'gSDE' in err and 'Hardtanh' in err
    leaky = sb3.PPO('MlpPolicy', 'Pendulum-v1', device='cpu',
                    policy_kwargs={'activation_fn': torch.nn.LeakyReLU})
    leaky.save(tmp_path / 'leaky.zip')
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'leaky.zip'), '--env', 'Pendulum-v1',
                          '--out', str(tmp_path / 'x')])
    assert 'LeakyReLU' in err and 'mlp_extractor.policy_net[1]' in err
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'leaky.zip'), '--env', REACH,
                          '--out', str(tmp_path / 'x')])
    assert 'observation space' in err
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'nope.zip'), '--env', REACH,
                          '--out', str(tmp_path / 'x')])
    assert 'nope.zip: no such file' in err
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'leaky.zip'), '--env', 'Pendulum-v9',
                          '--out', str(tmp_path / 'x')])
    assert "--env: unknown environment id 'Pendulum-v9'" in err
    # a VecNormalize that normalizes only part of the policy's observation
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(REACH)]), norm_obs_keys=['observation'])
    venv.save(str(tmp_path / 'partial.pkl'))
    sac = sb3.SAC('MultiInputPolicy', gym.make(REACH), device='cpu', buffer_size=10)
    sac.save(tmp_path / 'sac.zip')
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'sac.zip'), '--env', REACH,
                          '--vecnormalize', str(tmp_path / 'partial.pkl'),
                          '--out', str(tmp_path / 'x')])
    assert 'partial.pkl' in err and 'norm_obs_keys' in err
    assert not (tmp_path / 'x').exists()


class ImageReach(gym.Env):
    observation_space = gym.spaces.Dict({
        'camera': gym.spaces.Box(0, 255, (36, 36, 3), np.uint8),
        'state': gym.spaces.Box(-1.0, 1.0, (3,), np.float32)})
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def test_a_cnn_policy_is_refused_by_name():
    model = sb3.SAC('MultiInputPolicy', ImageReach(), device='cpu', buffer_size=10)
    with pytest.raises(Sb3ImportError, match='camera: NatureCNN'):
        _actor_layers(model, 'SAC', 'model.zip (SAC)')


class _Marker:
    """Unpickled, it creates a file: what a malicious model would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.system, (f'touch {self.path}',))


def _rewrite_zip(src, dst, edit):
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for item in zin.infolist():
            zout.writestr(item, edit(item.filename, zin.read(item.filename)))


def test_a_serialized_field_in_the_zip_is_never_unpickled(tmp_path, capsys):
    import base64
    import json
    import pickle

    train(tmp_path, 'SAC', REACH, True)
    marker = tmp_path / 'marker'
    payload = base64.b64encode(pickle.dumps(_Marker(marker))).decode()

    def evil(name, raw):
        if name != 'data':
            return raw
        data = json.loads(raw)
        for key in ('observation_space', 'action_space', 'policy_class'):
            data[key][':serialized:'] = payload
        return json.dumps(data).encode()

    _rewrite_zip(tmp_path / 'model.zip', tmp_path / 'evil.zip', evil)
    status = main(['import-sb3', str(tmp_path / 'evil.zip'), '--env', REACH, '--vecnormalize',
                   str(tmp_path / 'vecnormalize.pkl'), '--out', str(tmp_path / 'b')])
    assert not marker.exists()
    assert status == 0 and 'matches SB3 predict' in capsys.readouterr().out  # checked


def test_malicious_weights_and_vecnormalize_files_are_refused_without_running(tmp_path,
                                                                             capsys):
    import pickle

    train(tmp_path, 'SAC', REACH, True)
    marker = tmp_path / 'marker'
    (tmp_path / 'evil.pkl').write_bytes(pickle.dumps(_Marker(marker)))
    status = main(['import-sb3', str(tmp_path / 'model.zip'), '--env', REACH,
                   '--vecnormalize', str(tmp_path / 'evil.pkl'), '--out', str(tmp_path / 'x')])
    assert not marker.exists()
    err = capsys.readouterr().err
    assert status == 2 and err.count('\n') == 1, err
    assert 'evil.pkl: holds posix.system, which is not read' in err and '--trust-pickle' in err
    buf = __import__('io').BytesIO()
    torch.save({'actor.mu.weight': _Marker(marker)}, buf)
    _rewrite_zip(tmp_path / 'model.zip', tmp_path / 'evil.zip',
                 lambda name, raw: buf.getvalue() if name == 'policy.pth' else raw)
    err = _fails(capsys, ['import-sb3', str(tmp_path / 'evil.zip'), '--env', REACH,
                          '--out', str(tmp_path / 'x')])
    assert 'evil.zip' in err and 'policy.pth' in err
    assert not marker.exists() and not (tmp_path / 'x').exists()
    # a genuine file the user vouches for reads the same with --trust-pickle
    assert main(['import-sb3', str(tmp_path / 'model.zip'), '--env', REACH, '--vecnormalize',
                 str(tmp_path / 'vecnormalize.pkl'), '--trust-pickle',
                 '--out', str(tmp_path / 'trusted')]) == 0
