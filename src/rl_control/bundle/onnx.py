"""ONNX export of a bundle's actor, and an onnxruntime `Policy` that serves it.

The exported graph is the numpy reference (`bundle.policy.Policy`) op for op: the raw contract
observation (float32, any batch size) -> Sub(mean) -> Mul(1/sqrt(var + eps)) -> Clip(+-clip)
-> [Gemm -> Relu|Tanh]* -> Gemm -> [Tanh] -> Clip(+-1) -> the action in [-1, 1]. Normalization is
in the graph (a clip cannot be folded into weights), so any ONNX runtime is handed the same
observation the numpy server builds and nothing else.

Why the graph is built with `onnx.helper` and not traced from torch: the bundle holds numpy
weights and a plain MLP description, so the graph is a dozen nodes written down directly; export
then works on a serving machine without torch, needs no tracer (whose op choices change between
torch versions), and the same bundle always gives the same bytes (a stable sha256).

Staleness: `policy.yaml` records `exports.onnx` = {file, sha256 of the file, opset, source: the
sha256 of what the graph was built from (weights checksum, network, normalization)}. Loading
with backend onnx refuses a file outside the bundle, a missing file, a file whose sha256
differs (replaced), a source that differs from the bundle's current one (weights or
normalization edited after export), a graph with external data (onnxruntime would read files
nobody hashed), and a graph that does not compute the bundle's own actor: it must give the
numpy policy's actions on CHECK_N observations (to CHECK_TOLERANCE) before it serves. The
session is built from the very bytes that were hashed.
Nothing here imports torch, and onnx/onnxruntime only when called.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_control.bundle.atomic import atomic_write_bytes, atomic_write_text
from rl_control.bundle.io import (
    SPEC_FILE,
    BundleError,
    bundle_file,
    dump_yaml,
    load_bundle_spec,
    resolve_bundle_dir,
)
from rl_control.bundle.policy import Policy, PolicyError

ONNX_FILE = 'actor.onnx'
# Opset 17 (ONNX 1.12, 2022): old enough for the runtimes a robot PC has, and the graph needs
# nothing newer; nothing older than 11 works (Clip with tensor bounds). The IR version written
# is the oldest the opset allows, so older runtimes can read the file.
DEFAULT_OPSET = 17
MIN_OPSET = 11
INPUT, OUTPUT = 'obs', 'action'
INSTALL_HINT = "pip install onnx onnxruntime (or the rl_control 'onnx' extra)"


def source_fingerprint(spec: dict[str, Any]) -> str:
    """sha256 of everything the graph is computed from: weights, network, normalization.

    Canonical JSON of those sections, so re-dumping policy.yaml (an `eval --record`) keeps it,
    and any edit that changes the actor's function changes it.
    """
    src = {'weights_sha256': spec['weights']['sha256'], 'network': spec['network'],
           'normalization': spec['observation'].get('normalization')}
    return hashlib.sha256(json.dumps(src, sort_keys=True).encode()).hexdigest()


def build_model(network: dict[str, Any], weights: dict[str, np.ndarray],
                normalization: dict[str, Any] | None, opset: int = DEFAULT_OPSET) -> Any:
    """The actor as an `onnx.ModelProto` (see the module docstring for the graph).

    The constants are the numpy Policy's own (float32 mean, float32 1/sqrt(var + eps) computed
    in float64), so both runtimes start from identical numbers.
    """
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise BundleError(f'ONNX export needs the onnx package ({INSTALL_HINT})') from None
    from onnx.defs import onnx_opset_version

    if not MIN_OPSET <= opset <= onnx_opset_version():
        raise BundleError(f'opset {opset}: the actor graph needs opset {MIN_OPSET}..'
                          f'{onnx_opset_version()} (this onnx)')
    ref = Policy(network, weights, normalization)  # validates the description and shapes
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    x = INPUT
    if ref.mean is not None:
        nodes += [helper.make_node('Sub', [x, const('norm_mean', ref.mean)], ['centered']),
                  helper.make_node('Mul', ['centered', const('norm_inv_std', ref.inv_std)],
                                   ['scaled']),
                  helper.make_node('Clip', ['scaled', const('norm_lo', np.float32(-ref.clip)),
                                            const('norm_hi', np.float32(ref.clip))],
                                   ['normalized'])]
        x = 'normalized'
    last = len(ref.w_t) - 1
    for i, (w_t, b) in enumerate(zip(ref.w_t, ref.b, strict=True)):
        # Gemm(transB=1) takes the (out, in) weight as stored in actor.safetensors.
        nodes.append(helper.make_node('Gemm', [x, const(f'l{i}.weight', w_t.T),
                                               const(f'l{i}.bias', b)], [f'z{i}'], transB=1))
        if i < last:
            act = 'Relu' if ref.activation == 'relu' else 'Tanh'
            nodes.append(helper.make_node(act, [f'z{i}'], [f'h{i}']))
            x = f'h{i}'
    z = f'z{last}'
    if ref.output == 'tanh':
        # Clip after Tanh: fast tanh kernels (onnxruntime's among them) overshoot 1 by an ulp,
        # and the contract promises actions in [-1, 1] to every runtime, not just this one.
        nodes.append(helper.make_node('Tanh', [z], ['squashed']))
        z = 'squashed'
    nodes.append(helper.make_node('Clip', [z, const('out_lo', np.float32(-1.0)),
                                           const('out_hi', np.float32(1.0))], [OUTPUT]))
    graph = helper.make_graph(
        nodes, 'rl_control_actor',
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ['batch', ref.obs_dim])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ['batch', ref.act_dim])],
        initializer=inits)
    opsets = [helper.make_opsetid('', int(opset))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name='rl_control',
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = ('rl_control actor: raw contract observation -> action in [-1, 1] '
                        '(normalization included)')
    from onnx import checker

    checker.check_model(model, full_check=True)
    return model


@dataclass
class Export:
    """What `export_onnx` wrote: the file, whether policy.yaml records it, the check."""

    path: Path
    recorded: bool
    max_error: float | None  # |onnxruntime - numpy| on CHECK_N observations; None: no ORT


CHECK_N = 1000
# Refuse above this: both runtimes are float32, so a correct graph differs by rounding only
# (about 1e-6 for trained-size nets); 1e-4 leaves room for large weights, not for a wrong op.
CHECK_TOLERANCE = 1e-4


def export_onnx(bundle: str | Path, out: str | Path | None = None,
                opset: int = DEFAULT_OPSET) -> Export:
    """Write the bundle's actor as ONNX, checked against the numpy policy first.

    Default file: `<bundle>/actor.onnx`. A file inside the bundle folder is recorded under
    `exports.onnx` in policy.yaml (the weights and their checksum are untouched); one outside it
    is a standalone copy and leaves the bundle as it was. When onnxruntime is installed the
    graph must give the numpy policy's actions (to CHECK_TOLERANCE) before anything is
    written.
    """
    folder = resolve_bundle_dir(bundle)
    spec, weights = load_bundle_spec(folder)
    spec_path = folder / SPEC_FILE
    norm = spec['observation'].get('normalization')
    try:
        model = build_model(spec['network'], weights, norm, opset)
        ref = Policy(spec['network'], weights, norm)
    except PolicyError as exc:
        raise BundleError(f'{spec_path}: {exc}') from None
    blob = model.SerializeToString()
    target = Path(out) if out is not None else folder / ONNX_FILE
    error = _check_against_numpy(blob, ref, norm, target)
    atomic_write_bytes(target, blob)
    try:
        rel = target.resolve().relative_to(folder.resolve())
    except ValueError:
        return Export(target, False, error)
    # Edit the file as written (not the in-memory upgrade of a /1 spec), then the record.
    raw = yaml.safe_load(spec_path.read_text())
    exports = dict(raw.get('exports') or {})
    exports['onnx'] = {'file': rel.as_posix(), 'sha256': hashlib.sha256(blob).hexdigest(),
                       'opset': int(opset), 'source': source_fingerprint(spec)}
    raw['exports'] = exports
    atomic_write_text(spec_path, dump_yaml(raw))
    return Export(target, True, error)


def _check_against_numpy(blob: bytes, ref: Policy, norm: dict[str, Any] | None,
                         target: Path) -> float | None:
    """The largest |onnxruntime - numpy| on observations around the normalization statistics."""
    try:
        import onnxruntime  # noqa: F401 - only whether it is there
    except ImportError:
        return None
    rt = OnnxPolicy(blob, ref.obs_dim, ref.act_dim, name=f'{target} (as exported)')
    error = _max_error(rt, ref, norm)
    if not error <= CHECK_TOLERANCE:
        raise BundleError(f'{target}: onnxruntime differs from the numpy policy by {error:.1e} '
                          f'(> {CHECK_TOLERANCE:g}) on {CHECK_N} observations; not written')
    return error


def _max_error(rt: OnnxPolicy, ref: Policy, norm: dict[str, Any] | None) -> float:
    """The largest |onnxruntime - numpy| on CHECK_N observations around the statistics."""
    rng = np.random.default_rng(0)
    obs = rng.normal(0.0, 2.0, (CHECK_N, ref.obs_dim))
    if norm is not None:  # in the statistics' own units, around their mean
        obs = np.asarray(norm['mean']) + np.sqrt(np.asarray(norm['var'])) * obs
    obs = obs.astype(np.float32)
    return float(np.abs(rt.act(obs) - ref.act(obs)).max())


def _external_data(blob: bytes, name: Path) -> list[str]:
    """The external files a graph's tensors name (initializers, constants, subgraphs)."""
    try:
        import onnx
    except ImportError:
        raise BundleError(f'{name}: backend onnx needs the onnx package to check the graph '
                          f'({INSTALL_HINT})') from None
    try:
        model = onnx.load_model_from_string(blob)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own types
        raise BundleError(f'{name}: not an ONNX model ({type(exc).__name__})') from None
    found: list[str] = []

    def tensors(graph: Any) -> None:
        for t in [*graph.initializer, *(s.values for s in graph.sparse_initializer)]:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                found.extend(e.value for e in t.external_data if e.key == 'location')
        for node in graph.node:
            for attr in node.attribute:
                for t in [attr.t, *attr.tensors]:
                    if t.data_location == onnx.TensorProto.EXTERNAL:
                        found.extend(e.value for e in t.external_data if e.key == 'location')
                for sub in [attr.g, *attr.graphs]:
                    tensors(sub)

    tensors(model.graph)
    return found


class OnnxPolicy:
    """`Policy.act` on onnxruntime: one vector (obs_dim,) or a batch (n, obs_dim), float32."""

    def __init__(self, path: str | Path | bytes, obs_dim: int, act_dim: int,
                 name: str | None = None) -> None:
        name = name or str(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise BundleError(f'{name}: backend onnx needs onnxruntime ({INSTALL_HINT})') \
                from None
        opts = ort.SessionOptions()
        # One thread: the actor is a few small GEMMs, and a thread pool only adds wake-up
        # latency and competes with the control loop for cores.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                path if isinstance(path, bytes) else str(path), opts,
                providers=['CPUExecutionProvider'])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f'{name}: onnxruntime cannot load it: {msg}') from None
        inp, outp = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inp] != [INPUT] or [o.name for o in outp] != [OUTPUT] or \
                inp[0].shape[-1] != obs_dim or outp[0].shape[-1] != act_dim:
            raise BundleError(f'{name}: expected input {INPUT}[batch, {obs_dim}] and output '
                              f'{OUTPUT}[batch, {act_dim}], found '
                              f'{[(i.name, i.shape) for i in inp]} -> '
                              f'{[(o.name, o.shape) for o in outp]}')
        self.obs_dim, self.act_dim = obs_dim, act_dim

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action(s) in [-1, 1]; a NaN in an observation row gives NaN actions, as in numpy."""
        obs = np.asarray(obs)
        single = obs.ndim == 1
        if obs.shape[-1:] != (self.obs_dim,) or obs.ndim not in (1, 2):
            want = f'({self.obs_dim},)' if single else f'(n, {self.obs_dim})'
            raise ValueError(f'observation has shape {obs.shape}, expected {want}')
        x = np.ascontiguousarray(obs.reshape(-1, self.obs_dim), np.float32)
        out = self.session.run([OUTPUT], {INPUT: x})[0]
        # onnxruntime's Clip maps NaN to a bound; the numpy reference propagates it, and the
        # serving loop brakes on a NaN action, so keep that signal.
        bad = np.isnan(x).any(axis=1)
        if bad.any():
            out[bad] = np.nan
        return out[0] if single else out


def load_onnx_policy(spec: dict[str, Any], folder: str | Path,
                     weights: dict[str, np.ndarray]) -> OnnxPolicy:
    """The bundle's recorded ONNX export as a policy, after checking it is this bundle's own.

    `weights`: the bundle's checked safetensors weights (`load_bundle_spec`), which the graph
    must compute (module docstring).
    """
    folder = resolve_bundle_dir(folder)
    spec_path = folder / SPEC_FILE
    rerun = f'run `rl-control export {folder} --format onnx`'
    record = (spec.get('exports') or {}).get('onnx')
    if not isinstance(record, dict) or not record.get('file') or not record.get('sha256'):
        raise BundleError(f'{folder / ONNX_FILE}: no ONNX export recorded in {spec_path} '
                          f'(exports.onnx); {rerun}')
    path = bundle_file(folder, record['file'], 'exports.onnx.file', spec_path)
    if not path.is_file():
        raise BundleError(f'{path}: missing (named by {spec_path}: exports.onnx.file); {rerun}')
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != record['sha256']:
        raise BundleError(f'{path}: sha256 does not match {spec_path}: exports.onnx.sha256 '
                          f'(replaced or corrupt); {rerun}')
    if record.get('source') != source_fingerprint(spec):
        raise BundleError(f'{path}: stale: the weights, network or normalization in '
                          f'{spec_path} changed after the export; {rerun}')
    external = _external_data(blob, path)
    if external:
        raise BundleError(f'{path}: the graph reads external data {sorted(set(external))}, '
                          f'which the bundle does not hash; {rerun}')
    norm = spec['observation'].get('normalization')
    try:
        ref = Policy(spec['network'], weights, norm)
    except PolicyError as exc:
        raise BundleError(f'{spec_path}: {exc}') from None
    rt = OnnxPolicy(blob, ref.obs_dim, ref.act_dim, name=str(path))
    error = _max_error(rt, ref, norm)
    if not error <= CHECK_TOLERANCE:
        raise BundleError(f'{path}: the graph does not compute this bundle\'s weights '
                          f'(onnxruntime differs from the numpy policy by {error:.1e} > '
                          f'{CHECK_TOLERANCE:g}); {rerun}')
    return rt
