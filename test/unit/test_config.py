"""Config validation: every mistake is ONE ConfigError naming file, dotted key and a fix."""
from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from rl_control.train.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    'env': 'Pendulum-v1', 'algo': 'sac', 'seed': 1, 'total_steps': 2000,
    'eval': {'every': 500, 'episodes': 3},
    'algo_kwargs': {'hidden_sizes': [32, 32], 'lr': 1e-3, 'batch_size': 64},
}


def write(tmp_path: Path, data: dict, name: str = 'cfg.yaml') -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_good_config_loads_with_types_and_algorithm_dataclass(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.env == 'Pendulum-v1' and cfg.eval.every == 500 and cfg.her is None
    assert cfg.algo_config.hidden_sizes == (32, 32)  # YAML list -> the dataclass's tuple
    assert cfg.algo_config.lr == pytest.approx(1e-3)
    assert cfg.algo_config.gamma == 0.99  # untouched default


def test_unknown_top_level_key_suggests_closest(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'totl_steps': 5}))
    assert 'cfg.yaml' in msg and 'totl_steps' in msg and "did you mean 'total_steps'" in msg


def test_rl_zoo_spelling_points_to_our_name(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'algo_kwargs': {'learning_rate': 1e-3}}))
    assert "algo_kwargs.learning_rate" in msg and "did you mean 'lr'" in msg


def test_unknown_nested_key_names_dotted_path(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'algo_kwargs': {'learning_rate_': 1e-3,
                                                             'batch_size': 64}}))
    assert 'algo_kwargs.learning_rate_' in msg and 'unknown key' in msg
    msg = error_of(write(tmp_path, {**GOOD, 'eval': {'evry': 10}}))
    assert 'eval.evry' in msg and "did you mean 'every'" in msg


def test_wrong_type_names_key_and_expected_type(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'total_steps': 'many'}))
    assert 'total_steps' in msg and 'expected int' in msg and "'many'" in msg
    msg = error_of(write(tmp_path, {**GOOD, 'algo_kwargs': {'batch_size': 1.5}}))
    assert 'algo_kwargs.batch_size' in msg
    msg = error_of(write(tmp_path, {**GOOD, 'normalize_obs': 'yes please'}))
    assert 'normalize_obs' in msg and 'bool' in msg


def test_unknown_env_id_suggests_registered_one(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'env': 'Pendulum-v9'}))
    assert 'env' in msg and 'Pendulum-v9' in msg and "did you mean 'Pendulum-v1'" in msg


def test_unknown_algorithm_suggests(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'algo': 'sacc'}))
    assert 'algo' in msg and 'sacc' in msg and "did you mean 'sac'" in msg


def test_missing_required_key(tmp_path):
    data = dict(GOOD)
    del data['total_steps']
    assert 'total_steps: required' in error_of(write(tmp_path, data))


def test_algorithm_value_check_reported_as_config_error(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'algo_kwargs': {'tau': 5.0}}))
    assert 'algo_kwargs' in msg and 'tau' in msg


def test_set_overrides_dotted_keys_as_yaml_scalars(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), ['algo_kwargs.lr=3e-4', 'total_steps=5000',
                                               'her=null', 'eval.episodes=7',
                                               'algo_kwargs.hidden_sizes=[8, 8]'])
    assert cfg.algo_config.lr == pytest.approx(3e-4) and cfg.total_steps == 5000
    assert cfg.eval.episodes == 7 and cfg.algo_config.hidden_sizes == (8, 8)


@pytest.mark.parametrize('item, words', [
    ('total_steps', 'KEY=VALUE'),
    ('=5', 'KEY=VALUE'),
    ('seed.x=1', 'seed is not a mapping'),
    ('algo_kwargs.lrr=1e-3', "did you mean 'lr'"),
    ('total_steps=[1', 'not valid YAML'),
])
def test_bad_set_is_a_config_error(tmp_path, item, words):
    assert words in error_of(write(tmp_path, GOOD), (item,))


def test_every_shipped_config_validates():
    paths = sorted((ROOT / 'config').glob('*.yaml')) + sorted(
        (ROOT / 'config/bench').glob('*.yaml'))
    assert len(paths) >= 10
    for path in paths:
        raw = yaml.safe_load(path.read_text())
        if not (isinstance(raw, dict) and 'algo' in raw and 'env' in raw):
            continue  # robot / node parameter files live here too
        load_config(path)  # raises on any problem


def test_cli_prints_one_line_without_traceback_and_exits_2(tmp_path):
    path = write(tmp_path, {**GOOD, 'algo_kwargs': {'bach_size': 64}})
    proc = subprocess.run([sys.executable, '-m', 'rl_control.cli', 'train', '--config',
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert 'algo_kwargs.bach_size' in proc.stderr and "did you mean 'batch_size'" in proc.stderr


def test_device_auto_resolves_to_what_torch_sees(tmp_path):
    import torch

    from rl_control.train.build import resolve_device

    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.device == 'auto'
    assert resolve_device('auto') == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert resolve_device('cpu') == 'cpu'

    class NoDeviceAgent:  # e.g. an algorithm not yet given a device argument
        def __init__(self, obs_dim, act_dim, cfg=None, seed=None):
            pass

    assert resolve_device('auto', NoDeviceAgent) == 'cpu'
    assert load_config(write(tmp_path, {**GOOD, 'device': 'cpu'})).device == 'cpu'


def test_device_cuda_without_cuda_is_one_clear_config_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip('CUDA is present here')
    for device in ('cuda', 'cuda:0'):
        msg = error_of(write(tmp_path, {**GOOD, 'device': device}))
        assert msg.startswith(f'{tmp_path / "cfg.yaml"}: device: ')
        assert 'CUDA is not available' in msg and 'use device: auto or cpu' in msg
        assert '\n' not in msg
    msg = error_of(write(tmp_path, {**GOOD, 'device': 'gpu'}))
    assert 'device' in msg and "unknown device 'gpu'" in msg


def test_off_policy_loop_counts_are_validated(tmp_path):
    msg = error_of(write(tmp_path, {**GOOD, 'algo_kwargs': {'gradient_steps': -2}}))
    assert 'algo_kwargs' in msg and 'gradient_steps >= -1' in msg
    msg = error_of(write(tmp_path, {**GOOD, 'algo': 'td3', 'algo_kwargs': {'train_freq': 0}}))
    assert 'train_freq must be >= 1' in msg
