"""Training configuration: one YAML file per task x algorithm (RL-Zoo style), validated up front.

Every mistake a person can make in a config (a misspelt key at any depth, a wrong type, an env id
or algorithm that does not exist, a malformed `--set`) is reported as ONE `ConfigError` that names
the file and the dotted key and suggests the closest valid name, BEFORE any env is built or any
training step is spent. Long runs that die after an hour on a typo are what this prevents.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
import difflib
from pathlib import Path
import types
import typing
from typing import Any, Literal, Union

import yaml

from rl_control.algos.registry import ALGORITHM_NAMES, get_algorithm


class ConfigError(ValueError):
    """A config problem, worded for the person who wrote the file (no traceback needed)."""


@dataclass
class EvalConfig:
    """Deterministic evaluation on separate envs every `every` env steps, `episodes` episodes.

    `time_limit`: the evaluation episodes' length in env steps (None: the training episodes'),
    e.g. to judge a task on the benchmark's longer episodes while training on shorter ones.
    `env_kwargs`: set over the training env's for the evaluation envs only, e.g. to judge pick
    and place from the table (`start_grasped: 0`) while training with a curriculum.
    """

    every: int = 5000
    episodes: int = 10
    time_limit: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def episode_steps(self, train_limit: int | None) -> int | None:
        """The evaluation episodes' time limit (None: the env's registered one)."""
        return self.time_limit if self.time_limit is not None else train_limit

    def kwargs(self, train_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The evaluation envs' kwargs: the training env's, then `env_kwargs` over them."""
        return {**train_kwargs, **self.env_kwargs}


@dataclass
class HerConfig:
    """Hindsight experience replay: relabel with `strategy` goals, `k` per real transition."""

    strategy: str = 'future'
    k: int = 4


@dataclass
class DemoConfig:
    """Demonstrations (off-policy runs): buffered, cloned (SAC), DAgger; see train/demos.py."""

    episodes: int = 100
    noise: float = 0.1
    bc_weight: float = 0.0
    bc_batch: int = 128
    bc_filter: bool = True
    dagger: bool = False


@dataclass
class TrainConfig:
    """A whole training run. `algo_kwargs` is checked against the algorithm's dataclass."""

    env: str
    algo: str
    total_steps: int
    seed: int = 0
    n_envs: int = 1
    # How the n_envs training envs are stepped: sync (one after another, in this process) or
    # async (one worker process each: n_envs cores). Not a hyperparameter: a seed gives the same
    # run either way (test_vec_env.py), and a checkpoint of one kind resumes with the other.
    vec_env: Literal['sync', 'async'] = 'sync'
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # Episode length override (gymnasium `max_episode_steps`); null keeps the env's own.
    time_limit: int | None = None
    normalize_obs: bool = False
    # Scale rewards by a running estimate of the discounted return's std (SB3 VecNormalize,
    # gamma = the algorithm's). On-policy: as collected; off-policy: replay keeps raw rewards
    # and each sampled batch is scaled with the current statistics (SB3's replay buffers).
    normalize_reward: bool = False
    # Where the agent's networks and updates run: auto (CUDA when torch sees it) | cpu | cuda.
    device: str = 'auto'
    her: HerConfig | None = None
    demos: DemoConfig | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Env steps between checkpoints; null: only at the end of the run.
    checkpoint_every: int | None = None
    # Store the replay buffer in checkpoints (exact resume; large for 1e6 buffers).
    save_replay_buffer: bool = True
    # Stop as soon as a deterministic evaluation reaches this mean return (benchmarks).
    target_return: float | None = None
    # ... or as soon as its success rate (goal envs) reaches this fraction.
    target_success: float | None = None
    tensorboard: bool = True
    # torch intra-op threads; small MLPs update fastest on one (0: torch's default, all cores).
    threads: int = 1
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    # Not YAML keys: where the config came from and the built algorithm dataclass.
    source: str = field(default='<dict>', repr=False)
    algo_config: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The YAML-able form (for bundles and checkpoints); omits the derived fields."""
        out = dataclasses.asdict(self)
        out.pop('source')
        out.pop('algo_config')
        return out


_NOT_YAML = {'source', 'algo_config'}


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config, apply `KEY=VALUE` overrides, validate everything, return it."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(f'{source}: no such config file')
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{source}: not valid YAML: {exc}') from None
    if not isinstance(raw, dict):
        raise ConfigError(f'{source}: the top level must be a mapping of keys to values')
    return config_from_dict(raw, source=source, overrides=overrides)


def config_from_dict(raw: dict[str, Any], source: str = '<dict>',
                     overrides: list[str] | tuple[str, ...] = (),
                     check_env: bool = True) -> TrainConfig:
    """Validate a plain dict (as read from YAML) into a TrainConfig; see `load_config`."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        apply_override(raw, item, source)
    cfg = _build_dataclass(TrainConfig, raw, source, prefix='')
    cfg.source = source
    _check_values(cfg, source)
    if check_env:
        check_env_id(cfg.env, source)
    return cfg


def apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    """Apply one `a.b.c=value` to a nested dict; the value is parsed as a YAML scalar/flow."""
    key, sep, text = item.partition('=')
    key = key.strip()
    if not sep or not key or any(not part for part in key.split('.')):
        raise ConfigError(f'{source}: bad --set {item!r}: expected KEY=VALUE, e.g. '
                          'algo_kwargs.lr=1e-3')
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{source}: bad --set {item!r}: value is not valid YAML: '
                          f'{exc}') from None
    node = raw
    parts = key.split('.')
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            dotted = '.'.join(parts[:i + 1])
            raise ConfigError(f'{source}: bad --set {item!r}: {dotted} is not a mapping')
        node = nxt
    node[parts[-1]] = value


def check_env_id(env_id: str, source: str = '<dict>') -> None:
    """Fail with a suggestion if `env_id` is not registered (after importing our env modules)."""
    import gymnasium as gym

    from rl_control.envs.factory import register_envs_for

    register_envs_for(env_id)
    if env_id in gym.envs.registry:
        return
    raise ConfigError(f'{source}: env: unknown environment id {env_id!r}'
                      + _suggest(env_id, list(gym.envs.registry)))


# RL-Zoo / SB3 spellings people paste from there, mapped to ours (checked before difflib, which
# would suggest `learning_starts` for `learning_rate`).
_ZOO_NAMES = {'learning_rate': 'lr', 'net_arch': 'hidden_sizes', 'n_timesteps': 'total_steps',
              'normalize': 'normalize_obs', 'n_sampled_goal': 'k',
              'goal_selection_strategy': 'strategy'}


def _suggest(word: str, options: list[str]) -> str:
    if _ZOO_NAMES.get(word) in options:
        return f'; did you mean {_ZOO_NAMES[word]!r} (the RL-Zoo/SB3 name is {word!r})?'
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f'; did you mean {close[0]!r}?' if close else ''


def _build_dataclass(cls: type, raw: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass `cls` from `raw`, checking keys and types recursively."""
    where = prefix.rstrip('.') or 'top level'
    if not isinstance(raw, dict):
        raise ConfigError(f'{source}: {where}: expected a mapping, got {_tname(raw)}')
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_YAML}
    for key in raw:
        if key not in fields:
            raise ConfigError(f'{source}: {prefix}{key}: unknown key'
                              + _suggest(str(key), list(fields)))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = prefix + name
        if name not in raw:
            required = (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING)
            if required:
                raise ConfigError(f'{source}: {dotted}: required key is missing')
            continue
        kwargs[name] = _coerce(raw[name], hints[name], source, dotted)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the dataclass's own range checks
        raise ConfigError(f'{source}: {where}: {exc}') from None


def _coerce(value: Any, hint: Any, source: str, dotted: str) -> Any:
    """Check `value` against a type hint and convert lists to tuples / dicts to dataclasses."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, source, dotted)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f'{source}: {dotted}: expected {_hint_name(hint)}, '
                          f'got {_tname(value)} {value!r}')
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f'{source}: {dotted}: {value!r} is not one of {list(args)}'
                          + _suggest(str(value), [str(a) for a in args]))
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, source, dotted + '.')
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{source}: {dotted}: expected a list, got {_tname(value)} '
                              f'{value!r}')
        item_hint = args[0] if args else Any
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f'{source}: {dotted}: expected {len(args)} items')
            items = [_coerce(v, a, source, f'{dotted}[{i}]')
                     for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            items = [_coerce(v, item_hint, source, f'{dotted}[{i}]')
                     for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or hint is tuple) else items
    if origin is dict or hint is dict:
        if value is None:  # `env_kwargs:` left empty in YAML
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f'{source}: {dotted}: expected a mapping, got {_tname(value)}')
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)  # 1e6 in YAML is a float; buffer_size: 1e6 is clearly meant
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value  # an annotation we do not model: let the dataclass decide
    raise ConfigError(f'{source}: {dotted}: expected {_hint_name(hint)}, got {_tname(value)} '
                      f'{value!r}')


def _tname(value: Any) -> str:
    return {dict: 'a mapping', list: 'a list', type(None): 'null'}.get(
        type(value), type(value).__name__)


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace('typing.', '')


def _check_device(device: str, source: str) -> None:
    """'auto' | 'cpu' | 'cuda' | 'cuda:<index>'; CUDA must be present when asked for by name.

    Checked here, before any env is built, so that a config meant for a GPU machine fails in a
    second on a machine without one instead of after the envs are up (or, worse, silently
    training on the CPU for hours). torch is imported only for a CUDA request.
    """
    if device in ('auto', 'cpu'):
        return
    head, sep, index = device.partition(':')
    if head != 'cuda' or (sep and not index.isdigit()):
        raise ConfigError(f"{source}: device: unknown device {device!r}; expected 'auto', "
                          "'cpu', 'cuda' or 'cuda:<index>'"
                          + _suggest(device, ['auto', 'cpu', 'cuda']))
    import torch
    if not torch.cuda.is_available():
        raise ConfigError(f'{source}: device: {device!r} requested but CUDA is not available '
                          f'(torch {torch.__version__}); use device: auto or cpu')
    if sep and int(index) >= torch.cuda.device_count():
        raise ConfigError(f'{source}: device: {device!r}: only {torch.cuda.device_count()} '
                          'CUDA device(s) present')


def _check_values(cfg: TrainConfig, source: str) -> None:
    """Range checks and the algorithm section (names and types against its dataclass)."""
    if cfg.algo not in ALGORITHM_NAMES:
        raise ConfigError(f'{source}: algo: unknown algorithm {cfg.algo!r} (known: '
                          f'{", ".join(ALGORITHM_NAMES)})' + _suggest(cfg.algo, ALGORITHM_NAMES))
    positive = {'total_steps': cfg.total_steps, 'n_envs': cfg.n_envs,
                'eval.every': cfg.eval.every, 'eval.episodes': cfg.eval.episodes}
    if cfg.checkpoint_every is not None:
        positive['checkpoint_every'] = cfg.checkpoint_every
    if cfg.time_limit is not None:
        positive['time_limit'] = cfg.time_limit
    if cfg.eval.time_limit is not None:
        positive['eval.time_limit'] = cfg.eval.time_limit
    if cfg.demos is not None:
        positive.update({'demos.episodes': cfg.demos.episodes,
                         'demos.bc_batch': cfg.demos.bc_batch})
        if cfg.algo not in ('sac', 'td3', 'ddpg'):
            raise ConfigError(f'{source}: demos: demonstrations go into an off-policy replay '
                              f'buffer (sac, td3, ddpg), not {cfg.algo}')
        for key in ('noise', 'bc_weight'):
            if not getattr(cfg.demos, key) >= 0.0:
                raise ConfigError(f'{source}: demos.{key}: must be >= 0, got '
                                  f'{getattr(cfg.demos, key)}')
        if cfg.demos.bc_weight > 0 and cfg.algo != 'sac':
            raise ConfigError(f'{source}: demos.bc_weight: the behaviour-cloning term is '
                              f'written for sac, not {cfg.algo} (set it to 0)')
        if cfg.demos.dagger and not cfg.demos.bc_weight > 0:
            raise ConfigError(f'{source}: demos.dagger: labels states for the behaviour-cloning '
                              'term; set demos.bc_weight > 0')
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f'{source}: {key}: must be > 0, got {value}')
    if cfg.target_success is not None and not 0.0 < cfg.target_success <= 1.0:
        raise ConfigError(f'{source}: target_success: must be in (0, 1], got '
                          f'{cfg.target_success}')
    if cfg.threads < 0:
        raise ConfigError(f'{source}: threads: must be >= 0 (0: torch default), got '
                          f'{cfg.threads}')
    _check_device(cfg.device, source)
    if cfg.her is not None:
        if cfg.algo not in ('sac', 'td3', 'ddpg'):
            raise ConfigError(f'{source}: her: HER needs an off-policy algorithm, not {cfg.algo}')
        if cfg.her.strategy not in ('future', 'final', 'episode'):
            raise ConfigError(f'{source}: her.strategy: unknown strategy {cfg.her.strategy!r}'
                              + _suggest(cfg.her.strategy, ['future', 'final', 'episode']))
    try:
        spec = get_algorithm(cfg.algo)
    except ImportError as exc:
        raise ConfigError(f'{source}: algo: {cfg.algo} is not available ({exc})') from None
    kwargs = _build_dataclass(spec.config_cls, cfg.algo_kwargs, source, 'algo_kwargs.')
    # Rebuild through make_config so DDPG defaults apply; fields are already type-checked.
    checked = {f.name: getattr(kwargs, f.name) for f in dataclasses.fields(spec.config_cls)
               if f.name in cfg.algo_kwargs}
    try:
        cfg.algo_config = spec.make_config(checked)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{source}: algo_kwargs: {exc}') from None
