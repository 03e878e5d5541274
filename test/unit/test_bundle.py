"""Policy bundles: round trip through policy.yaml + safetensors, and every BundleError."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
import yaml

from rl_control.bundle.io import BundleError, load_bundle, load_bundle_spec, save_bundle
from rl_control.envs.factory import env_metadata, make_env
from rl_control.train.config import config_from_dict


class FakeAgent:
    """An MLP actor 3 -> 8 -> 1 with fixed random weights (tanh output)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.w = {'l0.weight': rng.normal(size=(8, 3)).astype(np.float32),
                  'l0.bias': rng.normal(size=8).astype(np.float32),
                  'l1.weight': rng.normal(size=(1, 8)).astype(np.float32),
                  'l1.bias': rng.normal(size=1).astype(np.float32)}

    def export_actor(self):
        return ({'kind': 'mlp', 'layers': [[3, 8], [8, 1]], 'activation': 'relu',
                 'output': 'tanh'}, self.w)

    def reference(self, x):
        h = np.maximum(x @ self.w['l0.weight'].T + self.w['l0.bias'], 0)
        return np.tanh(h @ self.w['l1.weight'].T + self.w['l1.bias'])


class FakeNormalizer:
    def to_yaml(self):
        return {'mean': [0.1, -0.2, 0.3], 'var': [1.0, 4.0, 0.25], 'clip': 10.0,
                'epsilon': 1e-8}


@pytest.fixture()
def bundle(tmp_path):
    cfg = config_from_dict({'env': 'Pendulum-v1', 'algo': 'sac', 'total_steps': 10})
    env = make_env('Pendulum-v1')
    meta = env_metadata(env, 'Pendulum-v1')
    agent = FakeAgent()
    path = save_bundle(tmp_path / 'b', agent, FakeNormalizer(), meta, cfg,
                       {'episodes': 3, 'mean_return': -150.0, 'std_return': 5.0,
                        'success_rate': None}, 'rl-control train --config x.yaml',
                       total_steps=10, wall_s=1.5)
    return path, agent


def test_round_trip_spec_weights_and_numpy_policy(bundle):
    path, agent = bundle
    spec, weights = load_bundle_spec(path)
    assert spec['format'] == 'rl_control.policy/2' and spec['algorithm'] == 'sac'
    assert spec['task']['env_id'] == 'Pendulum-v1'
    assert spec['action'] == {'type': 'box', 'size': 1, 'scale': [2.0], 'low': [-2.0],
                              'high': [2.0]}
    assert spec['observation']['terms'] == [{'name': 'obs', 'size': 3}]
    assert spec['joint_names'] == [] and spec['control_period_s'] is None
    assert spec['trained_with']['command'].startswith('rl-control train')
    assert spec['evaluation']['mean_return'] == -150.0
    for key, value in agent.w.items():
        np.testing.assert_array_equal(weights[key], value)
    # The served policy applies the baked-in normalization, then the MLP.
    _spec, policy = load_bundle(path)
    x = np.array([0.5, -1.0, 2.0], np.float32)
    norm = FakeNormalizer().to_yaml()
    xn = np.clip((x - norm['mean']) / np.sqrt(np.array(norm['var']) + 1e-8), -10, 10)
    np.testing.assert_allclose(np.asarray(policy.act(x)).ravel(), agent.reference(xn),
                               rtol=1e-5, atol=1e-6)
    # Loading never needs pickle: the weights file is plain safetensors.
    assert (path / 'actor.safetensors').read_bytes()[:8] != b'\x80\x04\x95'


def edit_spec(path: Path, fn) -> None:
    spec = yaml.safe_load((path / 'policy.yaml').read_text())
    fn(spec)
    (path / 'policy.yaml').write_text(yaml.safe_dump(spec))


def error_of(path: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle_spec(path)
    return str(info.value)


def test_missing_policy_yaml(tmp_path):
    msg = error_of(tmp_path)
    assert 'policy.yaml' in msg and 'missing' in msg


def test_bad_format_version(bundle):
    path, _ = bundle
    edit_spec(path, lambda s: s.update(format='rl_control.policy/99'))
    msg = error_of(path)
    assert 'policy.yaml' in msg and 'format' in msg and 'policy/99' in msg


def test_missing_field(bundle):
    path, _ = bundle
    edit_spec(path, lambda s: s['action'].pop('type'))
    msg = error_of(path)
    assert 'policy.yaml' in msg and 'action.type' in msg and 'missing' in msg


def test_sha_mismatch(bundle):
    path, _ = bundle
    data = bytearray((path / 'actor.safetensors').read_bytes())
    data[-1] ^= 0xFF
    (path / 'actor.safetensors').write_bytes(bytes(data))
    msg = error_of(path)
    assert 'actor.safetensors' in msg and 'sha256' in msg


def test_weight_shape_mismatch(bundle):
    path, agent = bundle
    w = dict(agent.w, **{'l0.weight': np.zeros((8, 4), np.float32)})
    save_file(w, path / 'actor.safetensors')
    digest = hashlib.sha256((path / 'actor.safetensors').read_bytes()).hexdigest()
    edit_spec(path, lambda s: s['weights'].update(sha256=digest))
    msg = error_of(path)
    assert 'policy.yaml' in msg and 'l0.weight' in msg and '(8, 4)' in msg


def test_layer_size_incompatible_with_observation(bundle):
    path, _ = bundle
    edit_spec(path, lambda s: s['observation']['terms'][0].update(size=5))
    msg = error_of(path)
    assert 'network.layers' in msg and 'observation size 5' in msg


def test_missing_weights_file(bundle):
    path, _ = bundle
    (path / 'actor.safetensors').unlink()
    msg = error_of(path)
    assert 'actor.safetensors' in msg and 'missing' in msg


def test_corrupt_yaml(bundle):
    path, _ = bundle
    (path / 'policy.yaml').write_text('format: [unclosed\n')
    assert 'not valid YAML' in error_of(path)


def test_robot_env_bundle_records_contract(tmp_path):
    pytest.importorskip('rl_control.envs.panda_reach')
    env_id = 'rl_control/PandaJointReach-v0'
    env = make_env(env_id)
    meta = env_metadata(env, env_id)
    n_in = meta['obs_dim']

    class Agent:
        def export_actor(self):
            return ({'kind': 'mlp', 'layers': [[n_in, 7]], 'activation': 'relu',
                     'output': 'tanh'},
                    {'l0.weight': np.zeros((7, n_in), np.float32),
                     'l0.bias': np.zeros(7, np.float32)})

    cfg = config_from_dict({'env': env_id, 'algo': 'sac', 'total_steps': 10})
    path = save_bundle(tmp_path / 'r', Agent(), None, meta, cfg, None, 'test')
    spec, _ = load_bundle_spec(path)
    assert spec['joint_names'] == [f'panda_joint{i}' for i in range(1, 8)]
    assert spec['action']['type'] == 'joint_velocity' and spec['control_period_s'] > 0
    assert [t['name'] for t in spec['observation']['terms']][-1] == 'goal'
    env.close()


def test_cli_eval_record_writes_evaluation_and_keeps_weights(bundle):
    from rl_control.cli import main

    path, _agent = bundle
    before = (path / 'actor.safetensors').read_bytes()
    assert main(['eval', str(path), '--episodes', '2', '--record']) == 0
    assert main(['eval', str(path), '--episodes', '3', '--record']) == 0
    spec, _ = load_bundle_spec(path)  # still valid: checksum and fields intact
    (entry,) = spec['evaluations']  # same env id: the newer run replaced the older
    assert entry['episodes'] == 3 and entry['env_id'] == 'Pendulum-v1'
    assert entry['command'].startswith(f'rl-control eval {path} --env Pendulum-v1')
    assert (path / 'actor.safetensors').read_bytes() == before


def test_v1_bundles_load_with_their_old_meaning():
    from pathlib import Path

    from rl_control.bundle import load_bundle_spec

    v1 = Path(__file__).resolve().parents[1] / 'fixtures' / 'v1_panda_reach'  # the 0.1 bundle
    spec, _ = load_bundle_spec(v1)
    assert spec['format'] == 'rl_control.policy/1'
    assert spec['robot'] == 'panda' and spec['shaper'] is None
    assert spec['goal_region']['low'] == [0.45, -0.15, 0.0]
    assert spec['success_distance'] == 0.05


def test_v1_goal_region_is_the_reach_task_box():
    from rl_control.bundle.io import V1_REACH_GOAL_REGION
    from rl_control.envs.reach_task import GOAL_HIGH, GOAL_LOW

    assert V1_REACH_GOAL_REGION == {'low': GOAL_LOW.tolist(), 'high': GOAL_HIGH.tolist()}


@pytest.mark.parametrize('key, index, value, words', [
    ('var', 1, -4.0, 'observation.normalization.var[1]: -4.0 is negative'),
    ('var', 2, float('nan'), 'observation.normalization.var[2]: nan is not finite'),
    ('mean', 0, float('inf'), 'observation.normalization.mean[0]: inf is not finite'),
])
def test_a_normalizer_a_server_cannot_compute_with_is_refused_naming_it(bundle, key, index,
                                                                        value, words):
    path, _agent = bundle
    edit_spec(path, lambda s: s['observation']['normalization'][key].__setitem__(index, value))
    msg = error_of(path)
    assert words in msg and '\n' not in msg


def test_a_nan_in_the_goal_region_is_refused_at_load(bundle):
    path, _agent = bundle
    edit_spec(path, lambda s: s.update(goal_region={'frame': 'panda_link0',
                                                    'low': [0.45, float('nan'), 0.0],
                                                    'high': [0.75, 0.15, 0.3]}))
    assert 'goal_region.low: [0.45, nan, 0.0] is not 3 finite numbers' in error_of(path)
