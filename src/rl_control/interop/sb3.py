"""Stable-Baselines3 models -> policy bundles (`rl-control import-sb3`).

A SAC, TD3, DDPG or PPO model with an MLP policy, trained on one of this package's envs, becomes
a bundle the policy server runs: the env's contract, SB3's deterministic actor as the bundle's
MLP (SAC: tanh(mu); TD3/DDPG: the actor; PPO: the mean, clipped to the action box) and the
observation normalization of a VecNormalize file. Anything else (a CNN, a custom extractor, an
activation or layer the bundle format has no name for, SAC's gSDE mean clip) is refused by name.

How SB3 orders a Dict observation. gymnasium's `spaces.Dict` sorts a plain dict's keys
(gymnasium/spaces/dict.py, `spaces_dict = dict(sorted(spaces.items()))`, sort_keys=True by
default), and SB3's CombinedExtractor concatenates its per-key nn.Flatten outputs in the space's
key order (stable_baselines3/common/torch_layers.py, CombinedExtractor.__init__ `for key,
subspace in observation_space.spaces.items()` and forward `th.cat(encoded_tensor_list, dim=1)`);
`gymnasium.wrappers.FlattenObservation` uses the same order (spaces.utils.flatten of a Dict).
For the reach envs that is [achieved_goal(3), desired_goal(3), observation(17)] = 23 inputs,
while the contract vector is concat(observation, desired_goal) = joint_pos, joint_vel, ee_pos,
goal (20). The order is taken from the model's own observation space, never assumed.
achieved_goal is ee_pos (the env sets it to `observation[ee_pos]`), so its columns of the first
layer are folded onto the ee_pos columns: exact when both are normalized alike, which is what
VecNormalize does (it sees the same values under both keys).

VecNormalize (stable_baselines3/common/vec_env/vec_normalize.py `_normalize_obs`):
obs -> clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), per key of norm_obs_keys.
The bundle's normalization is the same formula, so mean, var, clip = clip_obs and epsilon =
epsilon map one to one (epsilon is inside the square root in both; clip_obs is in normalized
units in both). Reward normalization does not affect actions and is dropped.

The result is checked before it is written: the bundle's numpy policy must reproduce SB3's
`predict(obs, deterministic=True)` on observations from the env. Nothing in the files is
executed: the model is rebuilt from the zip's plain JSON fields and its weights read with
`torch.load(weights_only=True)`, the VecNormalize statistics by a restricted unpickler
(sb3_files.py); the bundle written holds no pickle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl_control.bundle.io import save_bundle
from rl_control.bundle.policy import Policy, PolicyError
from rl_control.interop.sb3_actor import _actor_layers, _self_check
from rl_control.interop.sb3_files import (
    Sb3ImportError,
    load_model,
    load_vecnormalize,
    read_data,
    same_space,
)

SUPPORTED = ('SAC', 'TD3', 'DDPG', 'PPO')
GOAL_KEYS = ('observation', 'achieved_goal', 'desired_goal')
CHECK_TOLERANCE = 1e-4  # in [-1, 1] action units; a correct import is at float32 rounding


@dataclass
class ImportResult:
    """What `import_sb3` wrote and how well the bundle reproduces SB3."""

    bundle: Path
    algorithm: str
    max_error: float
    checked: int
    notes: list[str] = field(default_factory=list)


@dataclass
class _Input:
    """One input of SB3's first layer: the contract entry it reads and its normalization."""

    index: int  # position in the contract (bundle) observation vector
    primary: bool  # False: a duplicate (achieved_goal) folded onto its primary entry
    mean: float | None = None  # VecNormalize statistics; None: not normalized
    var: float | None = None


class _Actor:
    """`export_actor()` for save_bundle."""

    def __init__(self, network: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self.network, self.weights = network, weights

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return self.network, self.weights


class _Normalization:
    """`to_yaml()` for save_bundle."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_yaml(self) -> dict[str, Any]:
        return self.data


def import_sb3(model_path: str | Path, env_id: str, out: str | Path,
               vecnormalize: str | Path | None = None, command: str = '',
               n_check: int = 256, seed: int = 0, trust_pickle: bool = False) -> ImportResult:
    """Convert an SB3 model (+ VecNormalize file) trained on `env_id` into a bundle at `out`.

    `trust_pickle`: unpickle the VecNormalize file as SB3 does (only for a file you trust)
    when the restricted reader refuses it.
    """
    model_path = Path(model_path)
    algo = detect_algorithm(model_path)
    sb3 = _sb3()
    env = _make_env(env_id)
    try:
        model = load_model(model_path, algo, read_data(model_path), env, env_id)
        vecnorm = None
        if vecnormalize:
            vecnorm = load_vecnormalize(vecnormalize, trust_pickle)
            if not same_space(vecnorm.space, model.observation_space):
                raise Sb3ImportError(f'{vecnormalize}: its observation space differs from '
                                     f"the model's {model.observation_space}")
        return _convert(sb3, model, algo, model_path, env, env_id, out, vecnorm, vecnormalize,
                        command, n_check, seed)
    finally:
        env.close()


def _convert(sb3: Any, model: Any, algo: str, model_path: Path, env: Any, env_id: str,
             out: str | Path, vecnorm: Any, vecnormalize: str | Path | None, command: str,
             n_check: int, seed: int) -> ImportResult:
    """import_sb3 once the model and the env exist (the caller closes the env)."""
    where = f'{model_path} ({algo})'
    inputs = _inputs(model, env, env_id, where)
    linears, activation, output = _actor_layers(model, algo, where)
    notes = _normalize_inputs(inputs, vecnorm, model, vecnormalize)
    low, high = _action_box(model, env, env_id, where)
    eps = float(vecnorm.epsilon) if vecnorm is not None else 0.0
    weights, layers = _fold(linears, inputs, output, low, high, eps)
    network = {'kind': 'mlp', 'layers': layers, 'activation': activation, 'output': output}
    norm = _bundle_normalization(inputs, vecnorm, vecnormalize)
    try:
        policy = Policy(network, weights, norm)
    except PolicyError as exc:  # a folding bug, not a user error; still one line
        raise Sb3ImportError(f'{where}: the converted actor is inconsistent: {exc}') from None
    max_err, checked = _self_check(model, vecnorm, env, policy, low, high, n_check, seed)
    if not max_err <= CHECK_TOLERANCE:
        raise Sb3ImportError(f'{where}: the converted actor differs from SB3 predict by '
                             f'{max_err:.2e} (> {CHECK_TOLERANCE:g}) on {checked} observations; '
                             'nothing was written')
    from rl_control.envs.factory import env_metadata

    meta = env_metadata(env, env_id)
    cfg = {'algo': algo.lower(), 'env': env_id, 'seed': getattr(model, 'seed', None),
           'imported_from': {
               'library': 'stable-baselines3', 'version': sb3.__version__,
               'model': str(model_path), 'model_sha256': _sha256(model_path),
               'vecnormalize': None if vecnormalize is None else str(vecnormalize),
               'vecnormalize_sha256': None if vecnormalize is None else
               _sha256(Path(vecnormalize)),
               'policy': type(model.policy).__name__,
               'max_action_error': float(max_err), 'checked_observations': checked}}
    bundle = save_bundle(out, _Actor(network, weights),
                         None if norm is None else _Normalization(norm), meta, cfg, None,
                         command or f'rl-control import-sb3 {model_path} --env {env_id}',
                         total_steps=int(getattr(model, 'num_timesteps', 0)) or None)
    return ImportResult(bundle, algo.lower(), float(max_err), checked, notes)


# -- the model file -------------------------------------------------------------------------------
def detect_algorithm(model_path: Path) -> str:
    """The SB3 algorithm of a saved model, read from the zip's `data` JSON (nothing unpickled).

    SB3 does not store the algorithm's name; the policy class's module and the saved
    hyperparameters tell them apart (DDPG is TD3 with policy_delay 1 and target_noise_clip 0,
    stable_baselines3/ddpg/ddpg.py; A2C and PPO share ActorCriticPolicy, PPO has clip_range).
    """
    data = read_data(model_path)
    policy = data.get('policy_class') or {}
    module = str(policy.get('__module__', '?')) if isinstance(policy, dict) else '?'
    if module == 'stable_baselines3.sac.policies':
        return 'SAC'
    if module == 'stable_baselines3.td3.policies':
        ddpg = data.get('policy_delay') == 1 and data.get('target_noise_clip') == 0.0
        return 'DDPG' if ddpg else 'TD3'
    if module == 'stable_baselines3.common.policies':
        if 'clip_range' in data:
            return 'PPO'
        if 'ent_coef' in data and 'n_steps' in data:
            raise Sb3ImportError(f'{model_path}: A2C models are not supported (supported: '
                                 f'{", ".join(SUPPORTED)})')
    name = module.split('.')[1] if module.count('.') >= 2 else module
    raise Sb3ImportError(f'{model_path}: policy_class from {module}: the {name.upper()} '
                         f'algorithm is not supported (supported: {", ".join(SUPPORTED)})')


def _sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError:
        raise Sb3ImportError('import-sb3 needs stable-baselines3 (pip install '
                             'stable-baselines3)') from None
    return stable_baselines3


def _one_line(exc: BaseException) -> str:
    text = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_env(env_id: str) -> Any:
    from rl_control.envs.factory import make_env
    from rl_control.train.config import ConfigError, check_env_id

    try:
        check_env_id(env_id, '--env')
        return make_env(env_id)
    except (ConfigError, ValueError) as exc:
        raise Sb3ImportError(str(exc).replace('--env: env:', '--env:')) from None


# -- observation mapping and normalization --------------------------------------------------------
def _inputs(model: Any, env: Any, env_id: str, where: str) -> list[_Input]:
    """For each of SB3's first-layer inputs, in SB3's order, the contract entry it reads."""
    import gymnasium as gym

    space, env_space = model.policy.observation_space, env.observation_space
    for sub in (space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]):
        if not isinstance(sub, gym.spaces.Box) or not np.issubdtype(sub.dtype, np.floating):
            raise Sb3ImportError(f'{where}: observation space {sub} is not supported (float '
                                 'Box vectors only)')
    if isinstance(env_space, gym.spaces.Box):
        n = int(np.prod(env_space.shape))
        if not isinstance(space, gym.spaces.Box) or space.shape != env_space.shape or \
                len(env_space.shape) != 1:
            raise Sb3ImportError(f"{where}: observation space {space} does not match {env_id}'s "
                                 f'{env_space} (1-D Box)')
        return [_Input(i, True) for i in range(n)]
    if not (isinstance(env_space, gym.spaces.Dict) and set(env_space.spaces) == set(GOAL_KEYS)):
        raise Sb3ImportError(f'--env {env_id}: observation space {env_space} is neither a Box '
                             'nor a goal Dict (observation, achieved_goal, desired_goal)')
    positions = _goal_positions(env, env_id)
    if isinstance(space, gym.spaces.Dict):
        if set(space.spaces) != set(GOAL_KEYS) or any(
                space[k].shape != env_space[k].shape for k in GOAL_KEYS):
            raise Sb3ImportError(f"{where}: observation space {space} does not match "
                                 f"{env_id}'s {env_space}")
        order = list(space.spaces)  # CombinedExtractor's concatenation order
    else:  # FlattenObservation on the env: gymnasium flattens in the env's Dict order
        order = list(env_space.spaces)
        total = sum(int(np.prod(env_space[k].shape)) for k in order)
        if space.shape != (total,):
            raise Sb3ImportError(f"{where}: observation space {space} is neither {env_id}'s "
                                 f'Dict nor its flattened {total}-vector')
    return [_Input(int(i), key != 'achieved_goal') for key in order for i in positions[key]]


def _goal_positions(env: Any, env_id: str) -> dict[str, np.ndarray]:
    """Where each Dict key's entries sit in the contract vector concat(observation, goal)."""
    contract = getattr(env.unwrapped, 'contract', None)
    terms = [] if contract is None else list(contract.obs_spec.terms)
    names = [getattr(t, 'name', t) for t in terms]
    if contract is None or not names or names[-1] != 'goal' or 'ee_pos' not in names:
        raise Sb3ImportError(f'--env {env_id}: a goal env without a robot contract ending in '
                             '`goal` and holding `ee_pos`: achieved_goal cannot be built from '
                             "the bundle's observation")
    spec = contract.obs_spec
    goal = spec.term_slice('goal')
    ee = spec.term_slice('ee_pos')
    n_obs = int(np.prod(env.observation_space['observation'].shape))
    if goal.start != n_obs or goal.stop != spec.size:
        raise Sb3ImportError(f'--env {env_id}: the contract vector is not concat(observation, '
                             'desired_goal)')
    return {'observation': np.arange(0, n_obs), 'desired_goal': np.arange(goal.start, goal.stop),
            'achieved_goal': np.arange(ee.start, ee.stop)}


def _normalize_inputs(inputs: list[_Input], vecnorm: Any, model: Any,
                      path: str | Path | None) -> list[str]:
    """Attach each input's VecNormalize statistics (SB3 order); returns notes for the user."""
    import gymnasium as gym

    if vecnorm is None or not vecnorm.norm_obs:
        return [] if vecnorm is None else [f'{path}: norm_obs is False: no normalization']
    space = model.observation_space
    if isinstance(space, gym.spaces.Dict):
        keys = list(vecnorm.norm_obs_keys or space.spaces)
        mean, var = [], []
        for key, sub in space.spaces.items():
            n = int(np.prod(sub.shape))
            rms = vecnorm.obs_rms.get(key) if key in keys else None
            mean += [None] * n if rms is None else list(np.ravel(rms.mean))
            var += [None] * n if rms is None else list(np.ravel(rms.var))
    else:
        mean, var = list(np.ravel(vecnorm.obs_rms.mean)), list(np.ravel(vecnorm.obs_rms.var))
    for inp, m, v in zip(inputs, mean, var, strict=True):
        inp.mean, inp.var = (None, None) if m is None else (float(m), float(v))
    primaries = {inp.index: inp for inp in inputs if inp.primary}
    if len({p.mean is None for p in primaries.values()}) > 1:
        raise Sb3ImportError(f'{path}: norm_obs_keys {list(vecnorm.norm_obs_keys)} normalizes '
                             "part of the policy's observation (observation / desired_goal); "
                             'a bundle normalizes all of it or none')
    notes = []
    for inp in inputs:
        p = primaries[inp.index]
        if not inp.primary and (inp.mean, inp.var) != (p.mean, p.var):
            notes.append(f'{path}: achieved_goal is normalized unlike observation ee_pos; '
                         'folded exactly except where either normalization clips at clip_obs '
                         f'({vecnorm.clip_obs:g})')
            break
    return notes


def _bundle_normalization(inputs: list[_Input], vecnorm: Any, path: str | Path | None
                          ) -> dict[str, Any] | None:
    """policy.yaml observation.normalization: VecNormalize's statistics of the primaries."""
    primaries = sorted((inp for inp in inputs if inp.primary), key=lambda i: i.index)
    if vecnorm is None or not primaries or primaries[0].mean is None:
        return None
    return {'mean': [p.mean for p in primaries], 'var': [p.var for p in primaries],
            'clip': float(vecnorm.clip_obs), 'epsilon': float(vecnorm.epsilon)}


def _fold(linears: list[tuple[np.ndarray, np.ndarray]], inputs: list[_Input], output: str,
          low: np.ndarray, high: np.ndarray, eps: float
          ) -> tuple[dict[str, np.ndarray], list[list[int]]]:
    """SB3's layers as the bundle's: the first re-indexed to the contract, the last to [-1, 1].

    First layer: a primary input's column moves to its contract entry; a duplicate's column is
    added to its primary's, through the affine map between their normalizations (the identity
    when they agree: then exact even where the normalization clips).
    PPO (output clip): a = clip((mean - c) / h, -1, 1) with c, h the centre and half-width of
    the model's action box, which is SB3's clip(mean, low, high) in the bundle's units.
    """
    w0, b0 = (np.asarray(a, np.float64) for a in linears[0])
    if w0.shape[1] != len(inputs):
        raise Sb3ImportError(f'the first layer takes {w0.shape[1]} inputs, the observation has '
                             f'{len(inputs)}')
    n = 1 + max(inp.index for inp in inputs)
    w, b = np.zeros((w0.shape[0], n)), b0.copy()
    primaries = {inp.index: inp for inp in inputs if inp.primary}
    for col, inp in enumerate(inputs):
        p = primaries[inp.index]
        if inp.primary or (inp.mean, inp.var) == (p.mean, p.var):
            w[:, inp.index] += w0[:, col]
            continue
        # duplicate ~ a * x + d; x = s * g + m, g the primary's normalized value
        a, d = (1.0, 0.0) if inp.mean is None else (
            1.0 / np.sqrt(inp.var + eps), -inp.mean / np.sqrt(inp.var + eps))
        s, m = (1.0, 0.0) if p.mean is None else (np.sqrt(p.var + eps), p.mean)
        w[:, inp.index] += w0[:, col] * a * s
        b += w0[:, col] * (a * m + d)
    layers = [(w, b), *((np.asarray(x, np.float64), np.asarray(y, np.float64))
                        for x, y in linears[1:])]
    if output == 'clip':
        c, h = (high + low) / 2.0, (high - low) / 2.0
        wl, bl = layers[-1]
        layers[-1] = (wl / h[:, None], (bl - c) / h)
    weights = {}
    for i, (wi, bi) in enumerate(layers):
        weights[f'l{i}.weight'] = wi.astype(np.float32)
        weights[f'l{i}.bias'] = bi.astype(np.float32)
    return weights, [[int(wi.shape[1]), int(wi.shape[0])] for wi, _ in layers]


def _action_box(model: Any, env: Any, env_id: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The model's action bounds; they must be the env's own or [-1, 1] (a RescaleAction).

    The bundle's action a in [-1, 1] means low + (a + 1) / 2 * (high - low) in the model's
    units, which are the env's (`box` actions, robot contracts) either way.
    """
    import gymnasium as gym

    space = model.action_space
    inner = env.unwrapped.action_space
    if not isinstance(space, gym.spaces.Box) or not isinstance(inner, gym.spaces.Box):
        raise Sb3ImportError(f'{where}: action space {space} is not supported (Box only)')
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if space.shape != inner.shape:
        raise Sb3ImportError(f"{where}: action space {space} does not match {env_id}'s {inner}")
    own = np.allclose(low, inner.low) and np.allclose(high, inner.high)
    unit = np.allclose(low, -1.0) and np.allclose(high, 1.0)
    if not (own or unit):
        raise Sb3ImportError(f"{where}: action space {space} is neither {env_id}'s {inner} "
                             'nor [-1, 1]')
    return low.ravel(), high.ravel()
