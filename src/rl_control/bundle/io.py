"""Policy bundles: `policy.yaml` (the contract) + `actor.safetensors` (numpy weights).

A bundle is what leaves the training machine and drives a robot, so loading it must never
unpickle anything (safetensors holds only arrays) and must fail loudly, naming the file and the
field, on anything missing, corrupt or inconsistent: a policy that silently reads the wrong
joint order or stale weights moves a real arm wrongly. Every file a bundle names
(`weights.file`, `exports.onnx.file`) must lie inside its folder (`bundle_file`), and every
number the server computes with must be finite: a normalization variance that is negative or
NaN would serve NaN actions forever, a NaN in `goal_region` would switch the goal check off.
No torch import here: the serving path is numpy only.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_control import __version__
from rl_control.bundle.atomic import atomic_write_bytes, atomic_write_text
from rl_control.contract.actions import ACTION_TYPES as CONTRACT_ACTION_TYPES

FORMAT = 'rl_control.policy/2'
FORMAT_V1 = 'rl_control.policy/1'
READABLE = (FORMAT, FORMAT_V1)
# Robot-task sections of /2 (null for generic gymnasium tasks). A /1 bundle is read with the
# meaning it had: trained on the ideal velocity servo (no shaper, no randomization), by the
# Panda reach task, whose goal box is this (envs/reach_task.py GOAL_LOW / GOAL_HIGH, base
# frame) and whose success distance is its distance_threshold (default 0.05 m).
# start_pose: the joint positions episodes start from; task_name: the task (envs/tasks.py),
# optional: absent in bundles written before tasks had names, all of them reach bundles.
ROBOT_FIELDS = ('robot', 'shaper', 'torque', 'randomization', 'goal_region', 'success_distance',
                'hold', 'start_pose', 'task_name')
V1_REACH_GOAL_REGION = {'low': [0.45, -0.15, 0.0], 'high': [0.75, 0.15, 0.3]}
SPEC_FILE = 'policy.yaml'
WEIGHTS_FILE = 'actor.safetensors'
ACTION_TYPES = ('box', *CONTRACT_ACTION_TYPES)
"""`box`: a generic gymnasium task's affine map; the rest are robot contract action types."""


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and the field."""


def save_bundle(out_dir: str | Path, agent: Any, normalizer: Any, env_meta: dict[str, Any],
                cfg: Any, evaluation: dict[str, Any] | None, trained_with_command: str,
                total_steps: int | None = None, wall_s: float | None = None) -> Path:
    """Write a bundle for `agent`'s deterministic actor; returns the bundle folder.

    `normalizer` (or None) must offer `to_yaml()` -> {mean, var, clip, epsilon}; `env_meta` is
    `sim.envs.env_metadata(...)`; `cfg` a TrainConfig (or a dict). Weights are written first and
    the spec last, each atomically, so a bundle with a policy.yaml is always complete.
    """
    from safetensors.numpy import save as st_save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    network, weights = agent.export_actor()
    weights = {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in weights.items()}
    blob = st_save(weights)
    atomic_write_bytes(out_dir / WEIGHTS_FILE, blob)
    cfg_dict = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg or {})
    spec: dict[str, Any] = {
        'format': FORMAT,
        'algorithm': cfg_dict.get('algo'),
        'rl_control_version': __version__,
        'task': {'env_id': env_meta['env_id'], 'env_kwargs': env_meta.get('env_kwargs') or {},
                 'time_limit': env_meta.get('time_limit')},
        'control_period_s': None,
        'joint_names': [],
        'observation': {'terms': env_meta['obs_terms'], 'normalization': None},
        'action': _box_action(env_meta),
    }
    if env_meta.get('contract') is not None:
        spec.update(_contract_sections(env_meta['contract']))
    task = env_meta.get('robot_task') or {}
    for key in ROBOT_FIELDS:
        spec[key] = _plain(task.get(key))
    spec['observation']['normalization'] = (
        _plain(normalizer.to_yaml()) if normalizer is not None else None)
    spec['network'] = _plain(network)
    spec['weights'] = {'file': WEIGHTS_FILE, 'sha256': hashlib.sha256(blob).hexdigest()}
    spec['trained_with'] = {'command': trained_with_command, 'config': _plain(cfg_dict),
                            'total_steps': total_steps, 'seed': cfg_dict.get('seed'),
                            'wall_s': None if wall_s is None else round(float(wall_s), 3)}
    spec['evaluation'] = _plain(evaluation) if evaluation else None
    _validate(spec, weights, out_dir / SPEC_FILE)
    atomic_write_text(out_dir / SPEC_FILE, dump_yaml(spec))
    return out_dir


class _Dumper(yaml.SafeDumper):
    """YAML dumper: block mappings, flow-style lists of scalars.

    `low: [-2.0, 2.0]` keeps a 7-joint spec readable; nested structure stays one key per line.
    """


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, (dict, list)) for v in data) or all(
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v) for v in data)
    return dumper.represent_sequence('tag:yaml.org,2002:seq', data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    """YAML text as written into policy.yaml (safe types only)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=99)


def _box_action(env_meta: dict[str, Any]) -> dict[str, Any]:
    """Generic env: command = low + (a + 1) / 2 * (high - low), i.e. scale = (high - low) / 2."""
    low = np.asarray(env_meta['action_low'], np.float64)
    high = np.asarray(env_meta['action_high'], np.float64)
    return {'type': 'box', 'size': int(env_meta['act_dim']),
            'scale': ((high - low) / 2).tolist(), 'low': low.tolist(), 'high': high.tolist()}


def _contract_sections(contract: Any) -> dict[str, Any]:
    """policy.yaml sections of a robot env's contract (joints, obs terms, action, period).

    They are produced by sim/contract.py, so the server parses exactly what the env wrote.
    """
    if hasattr(contract, 'to_yaml'):
        sections = _plain(contract.to_yaml())
    else:
        from rl_control.contract.spec import contract_to_yaml

        sections = _plain(contract_to_yaml(contract.obs_spec, contract.act_spec,
                                           contract.control_period_s))
    out: dict[str, Any] = {}
    for key in ('joint_names', 'control_period_s', 'action'):
        if key in sections:
            out[key] = sections[key]
    obs = sections.get('observation')
    if isinstance(obs, dict):
        out['observation'] = {'terms': obs['terms'], 'normalization': None}
    elif 'terms' in sections:
        out['observation'] = {'terms': sections['terms'], 'normalization': None}
    return out


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain YAML types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, '__dataclass_fields__'):
        import dataclasses
        return _plain(dataclasses.asdict(value))
    return value


def load_bundle_spec(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and fully validate a bundle: (spec dict, weights). Raises BundleError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    folder = resolve_bundle_dir(path)
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise BundleError(f'{spec_path}: missing (is {folder} a policy bundle?)')
    try:
        spec = yaml.safe_load(spec_path.read_text())
    except yaml.YAMLError as exc:
        raise BundleError(f'{spec_path}: not valid YAML: {exc}') from None
    if not isinstance(spec, dict):
        raise BundleError(f'{spec_path}: expected a mapping at the top level')
    _require(spec, 'format', spec_path)
    if spec['format'] not in READABLE:
        raise BundleError(f'{spec_path}: format: {spec["format"]!r} is not supported '
                          f'(this rl_control reads {list(READABLE)})')
    if spec['format'] == FORMAT_V1:
        spec = upgrade_v1(spec)
    wfile = _require(spec, 'weights.file', spec_path)
    sha = _require(spec, 'weights.sha256', spec_path)
    wpath = bundle_file(folder, wfile, 'weights.file', spec_path)
    if not wpath.is_file():
        raise BundleError(f'{wpath}: weights file missing (named by {spec_path}: weights.file)')
    blob = wpath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha:
        raise BundleError(f'{wpath}: sha256 does not match {spec_path}: weights.sha256 '
                          '(corrupt or replaced weights)')
    try:
        weights = st_load(blob)
    except (SafetensorError, ValueError) as exc:
        raise BundleError(f'{wpath}: not a valid safetensors file: {exc}') from None
    _validate(spec, weights, spec_path)
    return spec, weights


def bundle_file(folder: Path, name: Any, field: str, spec_path: Path) -> Path:
    """`folder / name`, refused unless it is a relative path that stays inside `folder`."""
    rel = Path(str(name))
    inside = not rel.is_absolute() and '..' not in rel.parts and str(name).strip() != ''
    if inside:
        try:
            (folder / rel).resolve().relative_to(folder.resolve())
        except ValueError:  # a symlink out of the bundle
            inside = False
    if not inside:
        raise BundleError(f'{spec_path}: {field}: {name!r} is not a file inside the bundle '
                          f'{folder}')
    return folder / rel


def upgrade_v1(spec: dict[str, Any]) -> dict[str, Any]:
    """A /1 spec with the /2 robot-task fields filled in with the meaning /1 had."""
    out = dict(spec)
    joints = spec.get('joint_names') or []
    env_id = str((spec.get('task') or {}).get('env_id') or '')
    kwargs = (spec.get('task') or {}).get('env_kwargs') or {}
    robot_task = bool(joints)
    out['robot'] = ('panda' if all(str(j).startswith('panda_') for j in joints) else None) \
        if robot_task else None
    out['shaper'] = None
    out['randomization'] = None
    reach = env_id.startswith('rl_control/PandaJointReach')
    out['goal_region'] = ({'frame': 'panda_link0', **V1_REACH_GOAL_REGION} if reach else None)
    out['success_distance'] = float(kwargs.get('distance_threshold', 0.05)) if reach else None
    out['task_name'] = 'reach' if reach else None
    return out


def resolve_bundle_dir(path: str | Path) -> Path:
    """The bundle folder meant by `path`: the folder, its policy.yaml, or a run directory.

    A run directory (`rl-control train --out DIR`) holds its bundle in `DIR/bundle/`.
    """
    folder = Path(path)
    if folder.is_file() and folder.name == SPEC_FILE:
        return folder.parent
    if not (folder / SPEC_FILE).is_file() and (folder / 'bundle' / SPEC_FILE).is_file():
        return folder / 'bundle'
    return folder


BACKENDS = ('numpy', 'onnx')


def load_bundle(path: str | Path, backend: str = 'numpy') -> tuple[dict[str, Any], Any]:
    """Load a bundle as (spec, policy): `policy.act(obs)` with normalization baked in.

    backend numpy: `bundle.policy.Policy` on the safetensors weights (the reference); onnx:
    `bundle.onnx.OnnxPolicy` on the bundle's recorded `actor.onnx`, checked to be an export of
    exactly these weights. Every problem, the network's too, is a BundleError naming the file
    and the field.
    """
    from rl_control.bundle.policy import Policy, PolicyError

    if backend not in BACKENDS:
        raise BundleError(f'backend {backend!r} is not one of {list(BACKENDS)}')
    spec, weights = load_bundle_spec(path)
    if backend == 'onnx':
        from rl_control.bundle.onnx import load_onnx_policy

        return spec, load_onnx_policy(spec, path, weights)
    try:
        policy = Policy(spec['network'], weights, spec['observation'].get('normalization'))
    except PolicyError as exc:
        raise BundleError(f'{resolve_bundle_dir(path) / SPEC_FILE}: {exc}') from None
    return spec, policy


def _require(spec: dict[str, Any], dotted: str, where: Path) -> Any:
    node: Any = spec
    for part in dotted.split('.'):
        if not isinstance(node, dict) or node.get(part) is None:
            raise BundleError(f'{where}: {dotted}: required field is missing')
        node = node[part]
    return node


def _validate(spec: dict[str, Any], weights: dict[str, np.ndarray], where: Path) -> None:
    """Cross-check the spec's sections against each other and the weight shapes."""
    for dotted in ('algorithm', 'task.env_id', 'observation.terms', 'action.type',
                   'action.size', 'network.layers', 'network.activation', 'network.output'):
        _require(spec, dotted, where)
    if spec['action']['type'] not in ACTION_TYPES:
        raise BundleError(f'{where}: action.type: {spec["action"]["type"]!r} is not one of '
                          f'{list(ACTION_TYPES)}')
    try:
        obs_size = sum(int(t['size']) for t in spec['observation']['terms'])
        layers = [(int(a), int(b)) for a, b in spec['network']['layers']]
    except (KeyError, TypeError, ValueError):
        raise BundleError(f'{where}: observation.terms / network.layers: malformed') from None
    if not layers or layers[0][0] != obs_size:
        raise BundleError(f'{where}: network.layers: input size {layers[0][0] if layers else 0} '
                          f'!= observation size {obs_size} (sum of observation.terms)')
    act_size = int(spec['action']['size'])
    if layers[-1][1] != act_size:
        raise BundleError(f'{where}: network.layers: output size {layers[-1][1]} != '
                          f'action.size {act_size}')
    # box: one scale per action entry; a contract type: one per joint (its commands are joint
    # commands), its action is the type's arm entries (3 for ee_velocity) and a gripper entry
    joints = spec.get('joint_names') or []
    kind = CONTRACT_ACTION_TYPES.get(spec['action']['type'])
    per, what = (act_size, 'action size') if kind is None else (len(joints), 'joints')
    for key in ('scale', 'low', 'high'):
        values = spec['action'].get(key)
        if values is not None and len(values) != per:
            raise BundleError(f'{where}: action.{key}: {len(values)} values for {per} {what}')
    if kind is not None and kind.arm_size(len(joints)) + bool(
            spec['action'].get('gripper')) != act_size:
        raise BundleError(f'{where}: joint_names: {len(joints)} names for a '
                          f'{kind.name} action of size {act_size}')
    norm = spec['observation'].get('normalization')
    if norm is not None:
        for key in ('mean', 'var'):
            if key not in norm or len(norm[key]) != obs_size:
                raise BundleError(f'{where}: observation.normalization.{key}: needs '
                                  f'{obs_size} values')
        _finite(norm, where)
    _finite_region(spec.get('goal_region'), where)
    for i, (n_in, n_out) in enumerate(layers):
        for name, shape in ((f'l{i}.weight', (n_out, n_in)), (f'l{i}.bias', (n_out,))):
            if name not in weights:
                raise BundleError(f'{where}: weights: tensor {name!r} missing for '
                                  f'network.layers[{i}]')
            if tuple(weights[name].shape) != shape:
                raise BundleError(f'{where}: weights: {name} has shape '
                                  f'{tuple(weights[name].shape)}, network.layers[{i}] needs '
                                  f'{shape}')


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def _finite(norm: dict[str, Any], where: Path) -> None:
    """Normalization statistics a server can compute with: finite, variances >= 0."""
    for key in ('mean', 'var'):
        for i, v in enumerate(norm[key]):
            x = _number(v)
            if not np.isfinite(x) or (key == 'var' and x < 0):
                what = 'negative' if np.isfinite(x) else 'not finite'
                raise BundleError(f'{where}: observation.normalization.{key}[{i}]: {v!r} is '
                                  f'{what}')
    for key, low in (('clip', 0.0), ('epsilon', 0.0)):
        if key in norm and not (np.isfinite(_number(norm[key])) and _number(norm[key]) >= low):
            raise BundleError(f'{where}: observation.normalization.{key}: {norm[key]!r} must be '
                              'a finite number >= 0')


def _finite_region(region: Any, where: Path) -> None:
    """goal_region: 3 finite lows <= 3 finite highs (a NaN would accept every goal)."""
    if region is None:
        return
    if not isinstance(region, dict) or not {'low', 'high'} <= set(region):
        raise BundleError(f'{where}: goal_region: needs low and high')
    for key in ('low', 'high'):
        values = region[key]
        if not isinstance(values, list) or len(values) != 3 or \
                not all(np.isfinite(_number(v)) for v in values):
            raise BundleError(f'{where}: goal_region.{key}: {values!r} is not 3 finite numbers')
    if any(_number(lo) > _number(hi) for lo, hi in zip(region['low'], region['high'],
                                                       strict=True)):
        raise BundleError(f'{where}: goal_region: low {region["low"]} above high '
                          f'{region["high"]}')


def record_evaluation(path: str | Path, summary: dict[str, Any], command: str) -> Path:
    """Add an evaluation (e.g. from `rl-control eval --record`) to a bundle's policy.yaml.

    Kept under `evaluations`, one entry per env id (a newer run on the same env replaces the
    older), with the command that produced it, so a shipped bundle states what it achieves on
    each engine and how to check it. The weights and their checksum are untouched.
    """
    spec_path = resolve_bundle_dir(path) / SPEC_FILE
    spec, _weights = load_bundle_spec(path)
    entry = {'command': command, **_plain(summary)}
    entry.pop('bundle', None)
    kept = [e for e in spec.get('evaluations') or [] if e.get('env_id') != entry.get('env_id')]
    spec['evaluations'] = [*kept, entry]
    atomic_write_text(spec_path, dump_yaml(spec))
    return spec_path
