"""ONNX export and the onnxruntime backend: the same actions as the numpy reference, and a
bundle edited after its export is refused rather than served with stale weights."""
import hashlib
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save as st_save
import yaml

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from rl_control.bundle.io import (  # noqa: E402 - after the skips: the onnx extra is optional
    BundleError,
    load_bundle,
    load_bundle_spec,
    record_evaluation,
    save_bundle,
)
from rl_control.bundle.onnx import ONNX_FILE, OnnxPolicy, export_onnx  # noqa: E402
from rl_control.cli import main  # noqa: E402
from rl_control.envs.factory import env_metadata, make_env  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OBS, ACT, HIDDEN = 20, 7, (64, 64)


class Agent:
    """A Panda-reach-sized MLP with default-init-scale random weights."""

    def __init__(self, activation, output, seed=0):
        rng = np.random.default_rng(seed)
        sizes = [OBS, *HIDDEN, ACT]
        self.layers = [[a, b] for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        self.w = {}
        for i, (n_in, n_out) in enumerate(self.layers):
            # x3 on the last layer: outputs reach tanh saturation and the clip bounds
            gain = 3.0 if i == len(self.layers) - 1 else 1.0
            self.w[f'l{i}.weight'] = (gain * rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
                                      ).astype(np.float32)
            self.w[f'l{i}.bias'] = (0.1 * rng.normal(size=n_out)).astype(np.float32)
        self.net = {'kind': 'mlp', 'layers': self.layers, 'activation': activation,
                    'output': output}

    def export_actor(self):
        return self.net, self.w


class Normalizer:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.mean = rng.normal(size=OBS)
        self.var = rng.uniform(0.01, 2.0, OBS)

    def to_yaml(self):
        return {'mean': self.mean.tolist(), 'var': self.var.tolist(), 'clip': 5.0,
                'epsilon': 1e-8}


@pytest.fixture(scope='module')
def meta():
    return env_metadata(make_env('rl_control/PandaJointReach-v0'),
                        'rl_control/PandaJointReach-v0')


def make_bundle(path, meta, activation='relu', output='tanh', normalized=True):
    return save_bundle(path, Agent(activation, output), Normalizer() if normalized else None,
                       meta, {'algo': 'sac'}, None, 'test')


def observations(n, seed=1):
    """Around the normalizer's statistics, wide enough that its clip (5 std) is hit."""
    norm, rng = Normalizer(), np.random.default_rng(seed)
    return (norm.mean + np.sqrt(norm.var) * rng.normal(0.0, 2.5, (n, OBS))).astype(np.float32)


@pytest.mark.parametrize('normalized', [True, False])
@pytest.mark.parametrize('activation, output', [('relu', 'tanh'), ('tanh', 'clip')])
def test_onnx_runtime_equals_numpy_on_1000_observations(tmp_path, meta, activation, output,
                                                        normalized):
    path = make_bundle(tmp_path / 'b', meta, activation, output, normalized)
    done = export_onnx(path)
    assert done.recorded and done.path == path / ONNX_FILE and done.max_error < 1e-5
    _, ref = load_bundle(path)
    _, rt = load_bundle(path, backend='onnx')
    assert isinstance(rt, OnnxPolicy)
    obs = observations(1000)
    want = ref.act(obs)
    got = rt.act(obs)
    assert got.shape == (1000, ACT) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    singles = np.stack([rt.act(o) for o in obs])  # the serving path: one vector per tick
    assert singles.shape == (1000, ACT)
    np.testing.assert_allclose(singles, np.stack([ref.act(o) for o in obs]), atol=1e-5, rtol=0)
    if output == 'clip':  # the bound is really exercised, not only the interior
        assert np.mean(np.abs(want) == 1.0) > 0.05
    assert np.abs(got).max() <= 1.0


def test_export_records_itself_and_leaves_the_weights_alone(tmp_path, meta):
    path = make_bundle(tmp_path / 'b', meta)
    before = yaml.safe_load((path / 'policy.yaml').read_text())
    blob = (path / 'actor.safetensors').read_bytes()
    export_onnx(path)
    after = yaml.safe_load((path / 'policy.yaml').read_text())
    rec = after.pop('exports')['onnx']
    assert after == before and (path / 'actor.safetensors').read_bytes() == blob
    assert rec['file'] == ONNX_FILE and rec['opset'] == 17
    assert rec['sha256'] == hashlib.sha256((path / ONNX_FILE).read_bytes()).hexdigest()
    first = rec['sha256']
    export_onnx(path)  # deterministic: the same bundle gives the same bytes
    assert yaml.safe_load((path / 'policy.yaml').read_text())['exports']['onnx']['sha256'] \
        == first
    # the graph takes the raw observation with a dynamic batch dimension
    import onnx

    model = onnx.load(str(path / ONNX_FILE))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == OBS
    assert {n.op_type for n in model.graph.node} >= {'Sub', 'Mul', 'Clip', 'Gemm', 'Tanh'}


def _rewrite_weights(path, fn):
    spec_path = path / 'policy.yaml'
    spec = yaml.safe_load(spec_path.read_text())
    _, weights = load_bundle_spec(path)
    weights = {k: v.copy() for k, v in weights.items()}
    fn(weights)
    blob = st_save(weights)
    (path / 'actor.safetensors').write_bytes(blob)
    spec['weights']['sha256'] = hashlib.sha256(blob).hexdigest()  # a consistent bundle ...
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def _edit_spec(path, fn):
    spec_path = path / 'policy.yaml'
    spec = yaml.safe_load(spec_path.read_text())
    fn(spec)
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.mark.parametrize('edit, words', [
    (lambda p: _rewrite_weights(p, lambda w: w['l0.bias'].__iadd__(0.1)), 'stale'),
    (lambda p: _edit_spec(p, lambda s: s['observation']['normalization'].update(clip=3.0)),
     'stale'),
    (lambda p: _edit_spec(p, lambda s: s['network'].update(activation='tanh')), 'stale'),
    (lambda p: (p / ONNX_FILE).write_bytes((p / ONNX_FILE).read_bytes() + b'\0'), 'sha256'),
    (lambda p: (p / ONNX_FILE).unlink(), 'missing'),
    (lambda p: _edit_spec(p, lambda s: s.pop('exports')), 'no ONNX export recorded'),
])
def test_a_bundle_edited_after_export_is_refused(tmp_path, meta, edit, words):
    path = make_bundle(tmp_path / 'b', meta)
    export_onnx(path)
    edit(path)
    load_bundle(path)  # ... which the numpy backend serves
    with pytest.raises(BundleError) as err:
        load_bundle(path, backend='onnx')
    msg = str(err.value)
    assert words in msg and ONNX_FILE in msg and '\n' not in msg
    assert 'rl-control export' in msg  # says how to fix it


def test_re_dumping_policy_yaml_keeps_the_export_valid(tmp_path, meta):
    path = make_bundle(tmp_path / 'b', meta)
    export_onnx(path)
    record_evaluation(path, {'env_id': 'x', 'episodes': 1}, 'rl-control eval ...')
    load_bundle(path, backend='onnx')


def test_unknown_backend_is_one_line(tmp_path, meta):
    path = make_bundle(tmp_path / 'b', meta)
    with pytest.raises(BundleError, match="backend 'tensorrt'"):
        load_bundle(path, backend='tensorrt')


def test_nan_observations_give_nan_actions_like_numpy(tmp_path, meta):
    path = make_bundle(tmp_path / 'b', meta, 'tanh', 'clip')
    export_onnx(path)
    _, ref = load_bundle(path)
    _, rt = load_bundle(path, backend='onnx')
    obs = observations(3)
    obs[1, 4] = np.nan
    assert np.isnan(ref.act(obs)[1]).all() and np.isnan(rt.act(obs)[1]).all()
    assert np.isfinite(rt.act(obs)[[0, 2]]).all() and np.isnan(rt.act(obs[1])).all()
    with pytest.raises(ValueError, match='shape'):
        rt.act(np.zeros(OBS + 1, np.float32))


@pytest.mark.parametrize('bundle', ['tests:v1_panda_reach', *sorted(
    p.name for p in (REPO / 'models').iterdir() if (p / 'policy.yaml').is_file())])
def test_shipped_and_v1_bundles_export_and_agree(tmp_path, bundle):
    src = (REPO / 'test' / 'fixtures' / bundle.split(':')[1] if bundle.startswith('tests:')
           else REPO / 'models' / bundle)
    path = shutil.copytree(src, tmp_path / 'shipped')
    assert main(['export', str(path), '--format', 'onnx']) == 0
    spec, ref = load_bundle(path)
    _, rt = load_bundle(path, backend='onnx')
    norm = spec['observation']['normalization']
    rng = np.random.default_rng(0)
    obs = (np.asarray(norm['mean']) + np.sqrt(norm['var'])
           * rng.normal(size=(1000, len(norm['mean'])))).astype(np.float32)
    np.testing.assert_allclose(rt.act(obs), ref.act(obs), atol=1e-5, rtol=0)


def test_onnx_backend_serves_in_the_serving_loop(tmp_path, meta):
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    path = make_bundle(tmp_path / 'b', meta)
    export_onnx(path)
    settings = ServeSettings(backend='onnx')
    spec, policy = load_bundle(path, backend=settings.backend)
    loop = ServingLoop(spec, policy, settings, str(path))  # its dry run calls policy.act
    assert loop.policy is policy


def test_cli_export_and_its_errors(tmp_path, meta, capsys):
    path = make_bundle(tmp_path / 'b', meta)
    before = (path / 'policy.yaml').read_text()
    out = tmp_path / 'elsewhere' / 'a.onnx'
    assert main(['export', str(path), '--format', 'onnx', '--out', str(out)]) == 0
    assert out.is_file() and (path / 'policy.yaml').read_text() == before  # standalone copy
    assert 'bundle is unchanged' in capsys.readouterr().out
    assert main(['export', str(tmp_path / 'nope'), '--format', 'onnx']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'policy.yaml: missing' in err
    assert main(['export', str(path), '--format', 'onnx', '--opset', '9']) == 2
    assert 'opset 9' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['export', str(path), '--format', 'tflite'])


def test_onnx_module_imports_no_torch():
    code = ('import sys, rl_control.bundle.onnx\n'
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch'))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == '[]'


@pytest.mark.ros
def test_policy_server_backend_parameter_selects_the_runtime(tmp_path, meta):
    rclpy = pytest.importorskip('rclpy', reason='ROS 2 Python packages are not installed')
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from rl_control.ros.policy_server import PolicyServer

    fresh = make_bundle(tmp_path / 'fresh', meta)
    export_onnx(fresh)
    stale = shutil.copytree(fresh, tmp_path / 'stale')
    _rewrite_weights(stale, lambda w: w['l1.bias'].__iadd__(0.1))
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        for path, ok in ((fresh, True), (stale, False)):
            node = PolicyServer(context=context, parameter_overrides=[
                Parameter('bundle', value=str(path)), Parameter('backend', value='onnx')])
            try:
                result = node.trigger_configure()
                if ok:
                    assert result == TransitionCallbackReturn.SUCCESS, node.configure_error
                    assert isinstance(node.loop.policy, OnnxPolicy)
                else:
                    assert result == TransitionCallbackReturn.FAILURE
                    assert 'stale' in node.configure_error and ONNX_FILE in node.configure_error
            finally:
                node.state_node.destroy_node()
                node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_an_onnx_graph_that_is_not_the_bundles_actor_is_refused_at_load(tmp_path, meta):
    """A replaced actor.onnx with its sha256 and source recorded to match: the graph itself
    is compared with the weights."""
    path = make_bundle(tmp_path / 'b', meta)
    other = make_bundle(tmp_path / 'other', meta, activation='tanh')
    export_onnx(path)
    export_onnx(other)
    shutil.copy(other / ONNX_FILE, path / ONNX_FILE)
    blob = (path / ONNX_FILE).read_bytes()
    _edit_spec(path, lambda s: s['exports']['onnx'].update(
        sha256=hashlib.sha256(blob).hexdigest()))
    with pytest.raises(BundleError, match="does not compute this bundle's weights"):
        load_bundle(path, backend='onnx')


def test_onnx_with_external_data_is_refused(tmp_path, meta):
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    path = make_bundle(tmp_path / 'b', meta)
    export_onnx(path)
    model = onnx.load(str(path / ONNX_FILE))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location='w.bin',
                                   size_threshold=0)
    onnx.save(model, str(path / ONNX_FILE))
    blob = (path / ONNX_FILE).read_bytes()
    _edit_spec(path, lambda s: s['exports']['onnx'].update(
        sha256=hashlib.sha256(blob).hexdigest()))
    with pytest.raises(BundleError, match=r"external data \['w.bin'\]"):
        load_bundle(path, backend='onnx')


@pytest.mark.parametrize('field', ['weights', 'onnx'])
@pytest.mark.parametrize('name', ['/tmp/actor', '../outside/actor'])
def test_bundle_file_references_must_stay_inside_the_bundle(tmp_path, meta, field, name):
    path = make_bundle(tmp_path / 'b', meta)
    export_onnx(path)
    outside = tmp_path / 'outside'
    outside.mkdir()
    suffix = '.safetensors' if field == 'weights' else '.onnx'
    src = path / ('actor.safetensors' if field == 'weights' else ONNX_FILE)
    target = Path(name + suffix) if name.startswith('/') else outside / f'actor{suffix}'
    shutil.copy(src, target)
    ref = str(target) if name.startswith('/') else name + suffix
    if field == 'weights':
        _edit_spec(path, lambda s: s['weights'].update(file=ref))
    else:
        _edit_spec(path, lambda s: s['exports']['onnx'].update(file=ref))
    try:
        with pytest.raises(BundleError, match=f"{field if field == 'weights' else 'exports.onnx'}"
                                              r"\.file: .* is not a file inside the bundle"):
            load_bundle(path, backend='numpy' if field == 'weights' else 'onnx')
    finally:
        if name.startswith('/'):
            target.unlink()
