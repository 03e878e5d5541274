"""Reading Stable-Baselines3 files without executing anything in them (`rl-control import-sb3`).

An SB3 model zip (stable_baselines3/common/save_util.py `save_to_zip_file`) holds `data`, a JSON
object whose values that JSON cannot express are stored as `{":type:": ..., ":serialized:":
<base64 pickle>, <attribute>: <repr>, ...}`, and `policy.pth`, the policy's state_dict
(`torch.save`). SB3's own `load` unpickles every `:serialized:` value (`json_to_data`): a
crafted zip runs code before anything is checked. Here:
- the hyperparameters come from the JSON's plain fields only, never a `:serialized:` one:
  `policy_kwargs` (class values appear as `"<class 'torch.nn.modules.activation.ReLU'>"`
  and are resolved against an allowlist), the spaces' `_shape`, `low`, `high`, `dtype` and a
  Dict's key order (its `spaces` repr), `use_sde`;
- the policy is rebuilt from `--env`'s spaces in the model's layout (a Dict in the model's key
  order, or FlattenObservation's Box; the action box the model was trained with), with the
  class SB3 itself would build (`policy_aliases` of the algorithm: MlpPolicy / MultiInputPolicy)
  and the weights read with `torch.load(weights_only=True)`, so the check against SB3's own
  `predict` still runs;
- a VecNormalize file (`VecNormalize.save`: a pickle of the whole object) is read by a
  restricted unpickler (`_Restricted`) that builds numpy arrays, plain containers and inert
  records for SB3's and gymnasium's classes (their attributes, no code of theirs runs);
  anything else is refused with one line, unless the user passes `--trust-pickle`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import io
import json
import pickle
import re
from types import SimpleNamespace
from typing import Any
import zipfile

import numpy as np


class Sb3ImportError(ValueError):
    """A model (or VecNormalize file, or env) that cannot become a bundle; names the cause."""


_CLASS = re.compile(r"<class '([\w.]+)'>")
_ACTIVATIONS = ('ReLU', 'Tanh', 'LeakyReLU', 'ELU', 'SELU', 'GELU', 'SiLU', 'Sigmoid',
                'Softplus', 'Mish', 'Hardtanh', 'Identity')
_EXTRACTORS = ('FlattenExtractor', 'CombinedExtractor', 'NatureCNN')
_NOT_FOR_PREDICT = ('optimizer_class', 'optimizer_kwargs')  # the policy's optimizer only


def read_data(path: Any) -> dict[str, Any]:
    """The zip's `data` JSON (nothing unpickled)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read('data'))
    except FileNotFoundError:
        raise Sb3ImportError(f'{path}: no such file') from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Sb3ImportError(f'{path}: not a Stable-Baselines3 model zip ({_one_line(exc)})') \
            from None


def _one_line(exc: BaseException) -> str:
    text = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def _resolve_class(text: str, key: str, where: str) -> Any:
    """An allowlisted class from its repr in the JSON; anything else is refused by name."""
    import torch.nn as nn

    m = _CLASS.fullmatch(text.strip())
    name = m.group(1) if m else text
    module, _, cls = name.rpartition('.')
    if module.startswith('torch.nn.modules') and cls in _ACTIVATIONS:
        return getattr(nn, cls)
    if module == 'stable_baselines3.common.torch_layers' and cls in _EXTRACTORS:
        from stable_baselines3.common import torch_layers

        return getattr(torch_layers, cls)
    raise Sb3ImportError(f'{where}: policy_kwargs.{key}: {text} is not supported (only '
                       'torch.nn activations and SB3\'s own feature extractors)')


def policy_kwargs(data: dict[str, Any], where: str) -> dict[str, Any]:
    """`policy_kwargs` from the plain fields, class reprs resolved against the allowlist."""
    raw = data.get('policy_kwargs') or {}
    out = {}
    for key, value in raw.items():
        if key.startswith(':') or key in _NOT_FOR_PREDICT:
            continue
        if isinstance(value, str) and _CLASS.fullmatch(value.strip()):
            value = _resolve_class(value, key, where)
        elif isinstance(value, dict) and ':serialized:' in value:
            raise Sb3ImportError(f'{where}: policy_kwargs.{key} is stored only as a pickle, '
                               'which is not read')
        out[key] = value
    return out


def _numbers(text: Any, shape: tuple[int, ...], field: str, where: str) -> np.ndarray:
    try:
        values = np.array(str(text).replace('[', ' ').replace(']', ' ').split(), np.float64)
        return values.reshape(shape) if values.size > 1 else np.full(shape, values.item())
    except ValueError:
        raise Sb3ImportError(f'{where}: {field}: {text!r} is not a list of numbers') from None


def model_spaces(data: dict[str, Any], env: Any, env_id: str, where: str) -> tuple[Any, Any]:
    """(observation space, action space) of the model, built from `env`'s in the model's layout.

    Observation: the env's Dict in the key order the model saved, or the env's Dict flattened
    (FlattenObservation), or the env's Box; the dtype is the model's. Action: a Box of the
    model's shape and bounds (`_action_box` in sb3.py checks them against the env's).
    """
    import gymnasium as gym

    obs, act = data.get('observation_space') or {}, data.get('action_space') or {}
    env_obs = env.observation_space
    kind = str(obs.get(':type:', ''))
    if 'spaces.dict.Dict' in kind:
        keys = list(dict.fromkeys(re.findall(r"'([^']+)': ", str(obs.get('spaces', '')))))
        if not isinstance(env_obs, gym.spaces.Dict) or set(keys) != set(env_obs.spaces):
            raise Sb3ImportError(f"{where}: observation space Dict {keys} does not match "
                               f"{env_id}'s {env_obs}")
        space: Any = gym.spaces.Dict(OrderedDict((k, env_obs[k]) for k in keys))
    elif 'spaces.box.Box' in kind:
        shape = tuple(obs.get('_shape') or ())
        dtype = np.dtype(str(obs.get('dtype', 'float32')))
        flat = gym.spaces.utils.flatten_space(env_obs) if isinstance(env_obs, gym.spaces.Dict) \
            else env_obs
        if not isinstance(flat, gym.spaces.Box) or flat.shape != shape:
            raise Sb3ImportError(f"{where}: observation space Box{shape} does not match "
                               f"{env_id}'s {env_obs}")
        space = gym.spaces.Box(flat.low, flat.high, shape, dtype)
    else:
        raise Sb3ImportError(f'{where}: observation space {kind or "?"} is not supported (float '
                           'Box vectors or a Dict of them)')
    if 'spaces.box.Box' not in str(act.get(':type:', '')):
        raise Sb3ImportError(f'{where}: action space {act.get(":type:", "?")} is not supported '
                           '(Box only)')
    shape = tuple(act.get('_shape') or ())
    low = _numbers(act.get('low'), shape, 'action_space.low', where)
    high = _numbers(act.get('high'), shape, 'action_space.high', where)
    return space, gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), shape,
                                 np.float32)


def load_model(path: Any, algo: str, data: dict[str, Any], env: Any, env_id: str) -> Any:
    """The model's policy rebuilt and loaded (weights_only): `.policy`, the spaces, counters."""
    import stable_baselines3 as sb3
    import torch

    where = f'{path} ({algo})'
    obs_space, act_space = model_spaces(data, env, env_id, where)
    kwargs = policy_kwargs(data, where)
    cls = getattr(sb3, algo)
    alias = 'MultiInputPolicy' if hasattr(obs_space, 'spaces') else 'MlpPolicy'
    if 'Cnn' in str((data.get('policy_class') or {}).get('__init__', '')):
        raise Sb3ImportError(f'{where}: a CNN policy is not supported (MLP policies only)')
    if algo == 'PPO':  # PPO._setup_model passes use_sde itself (ppo.py / on_policy_algorithm)
        kwargs['use_sde'] = bool(data.get('use_sde', False))
    try:
        policy = cls.policy_aliases[alias](obs_space, act_space, lambda _: 0.0, **kwargs)
        with zipfile.ZipFile(path) as zf:
            state = torch.load(io.BytesIO(zf.read('policy.pth')), map_location='cpu',
                               weights_only=True)
        policy.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - torch / SB3 raise anything on a bad file
        raise Sb3ImportError(f'{where}: the policy cannot be rebuilt from its plain fields and '
                           f'policy.pth: {_one_line(exc)}') from None
    policy.set_training_mode(False)
    return SimpleNamespace(policy=policy, observation_space=obs_space, action_space=act_space,
                           seed=data.get('seed'), num_timesteps=data.get('num_timesteps', 0),
                           predict=policy.predict)


# -- VecNormalize ---------------------------------------------------------------------------
class _Record:
    """An inert stand-in for an allowlisted class: the pickled attributes, nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and \
                all(part is None or isinstance(part, dict) for part in state):  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state


_RECORD_MODULES = ('stable_baselines3.', 'gymnasium.spaces.', 'gym.spaces.', 'numpy.random.')


class _Restricted(pickle.Unpickler):
    """Builds numpy arrays, plain containers and `_Record`s; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        core = getattr(np, '_core', None) or np.core
        if module in ('numpy.core.multiarray', 'numpy._core.multiarray') and \
                name in ('_reconstruct', 'scalar'):
            return getattr(core.multiarray, name)
        if (module, name) in (('numpy', 'ndarray'), ('numpy', 'dtype')):
            return getattr(np, name)
        if module == 'numpy.dtypes' and name.endswith('DType'):
            return getattr(np.dtypes, name)
        if (module, name) == ('collections', 'OrderedDict'):
            return OrderedDict
        if module.startswith(_RECORD_MODULES) and name.isidentifier():
            return type(name, (_Record,), {'__module__': module})
        raise pickle.UnpicklingError(f'{module}.{name}')


@dataclass
class VecNormStats:
    """What the import uses of a VecNormalize (vec_normalize.py `normalize_obs`)."""

    obs_rms: Any  # .mean/.var, or a dict of them per key
    clip_obs: float
    epsilon: float
    norm_obs: bool
    norm_obs_keys: list[str] | None
    space: Any  # the saved observation space (a gymnasium space or a `_Record` of one)

    def normalize_obs(self, obs: Any) -> Any:
        """clip((obs - mean) / sqrt(var + epsilon), +-clip_obs) per normalized key, float32."""
        def norm(x: np.ndarray, rms: Any) -> np.ndarray:
            return np.clip((x - rms.mean) / np.sqrt(rms.var + self.epsilon), -self.clip_obs,
                           self.clip_obs).astype(np.float32)

        if not self.norm_obs:
            return obs
        if isinstance(obs, dict) and isinstance(self.obs_rms, dict):
            return {k: norm(v, self.obs_rms[k]) if k in (self.norm_obs_keys or []) else v
                    for k, v in obs.items()}
        return norm(obs, self.obs_rms)


def load_vecnormalize(path: Any, trust_pickle: bool = False) -> VecNormStats:
    """The statistics of a `VecNormalize.save` file (module docstring)."""
    try:
        with open(path, 'rb') as f:
            if trust_pickle:
                vn = pickle.load(f)  # noqa: S301 - the user said the file is trusted
            else:
                vn = _Restricted(f).load()
    except FileNotFoundError:
        raise Sb3ImportError(f'{path}: no such file') from None
    except pickle.UnpicklingError as exc:
        if trust_pickle or not _CLASS_NAME.fullmatch(str(exc)):
            raise Sb3ImportError(f'{path}: not a VecNormalize file ({_one_line(exc)})') from None
        raise Sb3ImportError(f'{path}: holds {exc}, which is not read (it could execute code); '
                           'pass --trust-pickle to unpickle a file you trust') from None
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything on a bad file
        raise Sb3ImportError(f'{path}: not a VecNormalize file ({_one_line(exc)})') from None
    if type(vn).__name__ != 'VecNormalize' or not hasattr(vn, 'obs_rms'):
        raise Sb3ImportError(f'{path}: holds a {type(vn).__name__}, not a VecNormalize')
    try:
        return VecNormStats(vn.obs_rms, float(vn.clip_obs), float(vn.epsilon),
                            bool(vn.norm_obs), getattr(vn, 'norm_obs_keys', None),
                            vn.observation_space)
    except (AttributeError, TypeError, ValueError) as exc:
        raise Sb3ImportError(f'{path}: not a VecNormalize file ({_one_line(exc)})') from None


_CLASS_NAME = re.compile(r'[\w.]+')


def same_space(saved: Any, model: Any) -> bool:
    """Whether a saved space (real or `_Record`) has the model space's keys and shapes."""
    saved_spaces, model_spaces_ = getattr(saved, 'spaces', None), getattr(model, 'spaces', None)
    if isinstance(saved_spaces, dict) or isinstance(model_spaces_, dict):
        return isinstance(saved_spaces, dict) and isinstance(model_spaces_, dict) and \
            list(saved_spaces) == list(model_spaces_) and \
            all(same_space(saved_spaces[k], model_spaces_[k]) for k in model_spaces_)
    shape = getattr(saved, '_shape', getattr(saved, 'shape', None))
    return shape is not None and tuple(shape) == tuple(model.shape)
