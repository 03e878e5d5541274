"""The training loop: off-policy (SAC/TD3/DDPG, optional HER) and on-policy (A2C).

Exact resume. A checkpoint holds everything that is not a pure function of its contents: agent
(networks, optimizers, torch generator), normalizers, replay buffer, every RNG state, counters,
and the progress rows. The one thing that cannot be saved portably is the simulator state
(pybullet, MuJoCo), so a checkpoint is also a *segment boundary*: the running episodes end there
as time-limit truncations (stored with `truncated=1`, so targets bootstrap through them, which is
unbiased) and every env is reset with a seed derived from (seed, segment index). An
uninterrupted run does exactly the same at the same steps, so a run killed after a checkpoint and
resumed continues bit for bit like one that was never interrupted — for any env. With
`checkpoint_every` a multiple of the episode length nothing is cut short at all.

Threads: `TrainControl` is the handle another thread (the ROS trainer node) uses to ask for a
stop or a checkpoint; the loop polls it once per env step, which costs one attribute read.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
import random
import sys
import threading
import time
from typing import Any

import numpy as np
import torch

from rl_control.algos.registry import get_algorithm
from rl_control.bundle.io import save_bundle
from rl_control.envs.factory import (
    env_metadata,
    final_observations,
    is_goal_space,
    make_vec_env,
    obs_dims,
    policy_input,
)
from rl_control.train.config import TrainConfig
from rl_control.train.evaluation import EvalResult, Evaluator
from rl_control.train.logger import RunLogger
from rl_control.train.persistence import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

_SEGMENT_SEED_STRIDE = 7919  # segment k resets env i with seed + k * stride + i
_EVAL_SEED_OFFSET = 1_000_000  # eval episode seeds never coincide with training seeds


class ResumeError(ValueError):
    """A checkpoint that cannot continue this config (different task or learner)."""


class TrainControl:
    """Thread-safe requests into a running `train` (e.g. from a ROS service callback)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._checkpoint = threading.Event()

    def request_stop(self) -> None:
        """Finish at the next env step: final checkpoint, bundle and plot are still written."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def request_checkpoint(self) -> None:
        """Save a checkpoint (and a bundle) at the next env step."""
        self._checkpoint.set()

    def take_checkpoint_request(self) -> bool:
        """Consume a pending checkpoint request (loop side)."""
        if self._checkpoint.is_set():
            self._checkpoint.clear()
            return True
        return False


class Callback:
    """Hooks called from the training thread; override what you need.

    A plain callable passed in `callbacks` is treated as `on_eval`. Returning False from
    `on_eval` stops training (like `TrainControl.request_stop`).
    """

    def on_eval(self, info: dict[str, Any]) -> bool | None:
        """After each evaluation; `info` is the progress row (step, eval_mean_return, ...)."""
        return None

    def on_checkpoint(self, path: Path, step: int) -> None:
        """After a checkpoint file has been written (and `latest` points at it)."""

    def on_end(self, result: TrainResult) -> None:
        """Once, after the bundle and plot are written."""


class _FnCallback(Callback):
    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn

    def on_eval(self, info: dict[str, Any]) -> bool | None:
        return self.fn(info)


@dataclass
class TrainResult:
    """Where things were written and how the run ended."""

    run_dir: Path
    bundle_dir: Path | None
    curve_png: Path | None
    steps: int
    wall_s: float
    last_eval: dict[str, Any] | None
    best_eval: dict[str, Any] | None
    reached_target: bool = False
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Global RNGs (python, legacy numpy, torch) — everything else owns a seeded generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
          callbacks: Iterable[Callback | Callable[[dict[str, Any]], Any]] | None = None,
          control: TrainControl | None = None, command: str | None = None) -> TrainResult:
    """Train per `cfg`, writing the run directory `out_dir`; see the module docstring.

    `out_dir` receives progress.csv, tb/, checkpoints/, bundle/ and learning_curve.png.
    `resume=True` continues from `out_dir/checkpoints/latest` (fresh start if there is none).
    """
    cbs = [c if isinstance(c, Callback) else _FnCallback(c) for c in (callbacks or [])]
    trainer = _Trainer(cfg, Path(out_dir), progress, cbs, control or TrainControl(),
                       command or ' '.join(sys.argv))
    try:
        if resume:
            trainer.restore()
        return trainer.run()
    finally:
        trainer.close()


class _Trainer:
    """State of one run; `run()` dispatches to the off- or on-policy loop."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, progress: bool, callbacks: list[Callback],
                 control: TrainControl, command: str) -> None:
        self._t0 = time.perf_counter()  # wall_s counts env/agent construction too
        self.cfg, self.run_dir, self.progress = cfg, run_dir, progress
        self.callbacks, self.control, self.command = callbacks, control, command
        self.spec = get_algorithm(cfg.algo)
        self.algo_cfg = cfg.algo_config if cfg.algo_config is not None else \
            self.spec.make_config(cfg.algo_kwargs)
        seed_everything(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # warm-up (uniform random) actions
        self.envs = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, cfg.env_kwargs, cfg.time_limit)
        space = self.envs.single_observation_space
        self.goal_env = is_goal_space(space)
        self.obs_dim, self.goal_dim = obs_dims(space)
        self.act_dim = int(np.prod(self.envs.single_action_space.shape))
        self.env_meta = env_metadata(self.envs.envs[0], cfg.env, cfg.env_kwargs, cfg.time_limit)
        self.agent = self._make_agent()
        self.normalizer = self._make_normalizer()
        self.reward_scaler = self._make_reward_scaler()
        self.buffer = None if self.spec.on_policy else self._make_buffer()
        self.evaluator = Evaluator(cfg.env, cfg.eval.episodes, cfg.env_kwargs, cfg.time_limit)
        # Counters (all checkpointed).
        self.env_steps = 0
        self.episodes = 0
        self.segment = 0
        self.n_evals = 0
        self.wall_offset = 0.0
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.ep_returns = np.zeros(cfg.n_envs)
        self.last_metrics: dict[str, float] = {}
        self.last_eval: dict[str, Any] | None = None
        self.best_eval: dict[str, Any] | None = None
        self.reached_target = False
        self.stopped = False
        self.resume_step: int | None = None
        self._ckpt_requested = False
        self.ckpt_dir = run_dir / 'checkpoints'
        self.logger: RunLogger | None = None

    # -- construction -------------------------------------------------------------------------
    def _make_agent(self) -> Any:
        kwargs: dict[str, Any] = {'seed': self.cfg.seed}
        if 'n_envs' in _init_params(self.spec.agent_cls):  # TD3/DDPG: one noise state per env
            kwargs['n_envs'] = self.cfg.n_envs
        return self.spec.agent_cls(self.obs_dim, self.act_dim, self.algo_cfg, **kwargs)

    def _make_normalizer(self) -> Any:
        if not self.cfg.normalize_obs:
            return None
        from rl_control.algos.normalizer import RunningNormalizer
        return RunningNormalizer(self.obs_dim)

    def _make_reward_scaler(self) -> Any:
        if not self.cfg.normalize_reward:
            return None
        from rl_control.algos.normalizer import RewardScaler
        gamma = getattr(self.algo_cfg, 'gamma', 0.99)
        return RewardScaler(self.cfg.n_envs, gamma=gamma)

    def _make_buffer(self) -> Any:
        from rl_control.algos import buffers
        # numpy allocates lazily: a 1e6 buffer costs memory only as it fills.
        capacity = int(getattr(self.algo_cfg, 'buffer_size', 1_000_000))
        if self.cfg.her is not None:
            if not self.goal_env:
                raise ValueError(f'her: {self.cfg.env} has no goal observations '
                                 '(observation/achieved_goal/desired_goal)')
            compute_reward = self.envs.envs[0].unwrapped.compute_reward
            return buffers.HerReplayBuffer(
                self.obs_dim - self.goal_dim, self.goal_dim, self.act_dim, capacity,
                compute_reward, n_envs=self.cfg.n_envs, k=self.cfg.her.k,
                strategy=self.cfg.her.strategy, seed=self.cfg.seed)
        return buffers.ReplayBuffer(self.obs_dim, self.act_dim, capacity, seed=self.cfg.seed)

    # -- helpers ------------------------------------------------------------------------------
    def _norm(self, x: np.ndarray) -> np.ndarray:
        return x if self.normalizer is None else self.normalizer.normalize(x)

    def _norm_t(self, t: torch.Tensor) -> torch.Tensor:
        if self.normalizer is None:
            return t
        return self.normalizer.normalize_torch(t)

    def _reset_envs(self) -> Any:
        """Start a segment: reset every env with a seed derived from (seed, segment)."""
        obs, _ = self.envs.reset(seed=self.cfg.seed + self.segment * _SEGMENT_SEED_STRIDE)
        self.ep_returns[:] = 0.0
        if hasattr(self.agent, 'reset_noise'):
            self.agent.reset_noise(None)
        if hasattr(self.buffer, 'end_episodes'):  # HER: episodes never span a reset
            self.buffer.end_episodes()
        return obs

    def _wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self._t0

    def _due(self, every: int | None, before: int, after: int) -> bool:
        return every is not None and after // every > before // every

    def _ckpt_due(self, before: int, after: int) -> bool:
        return after < self.cfg.total_steps and self._due(self.cfg.checkpoint_every, before, after)

    # -- running ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self.logger = RunLogger(self.run_dir, self.cfg.tensorboard, self.resume_step)
        self._bar = self._make_bar()
        try:
            if self.spec.on_policy:
                self._run_on_policy()
            else:
                self._run_off_policy()
        finally:
            self._bar.close()
        if self.last_eval is None or self.last_eval['step'] != self.env_steps:
            self._evaluate()
        self._checkpoint()
        bundle = self._save_bundle()
        history = list(self.logger.rows)
        png = self.logger.close(f'{self.cfg.algo.upper()} on {self.cfg.env}',
                                self.cfg.target_return)
        self.logger = None
        result = TrainResult(self.run_dir, bundle, png, self.env_steps, self._wall(),
                             self.last_eval, self.best_eval, self.reached_target, self.stopped,
                             history)
        for cb in self.callbacks:
            cb.on_end(result)
        return result

    def _make_bar(self) -> Any:
        from tqdm import tqdm
        return tqdm(total=self.cfg.total_steps, initial=self.env_steps, unit='step',
                    disable=not self.progress, dynamic_ncols=True, mininterval=0.5,
                    desc=f'{self.cfg.algo} {self.cfg.env}', file=sys.stderr)

    def _should_stop(self) -> bool:
        return self.stopped or self.reached_target or self.control.stop_requested

    def _segment_ends(self, before: int) -> bool:
        """Whether the running episodes end after this step.

        They do at a checkpoint (scheduled or requested), a stop request or the last step. It
        is decided before the transitions are stored, so that they are stored as truncated and
        a resumed run sees the same buffer.
        """
        if self.control.take_checkpoint_request():
            self._ckpt_requested = True
        return (self._ckpt_due(before, self.env_steps) or self._ckpt_requested
                or self.control.stop_requested or self.env_steps >= self.cfg.total_steps)

    def _after_steps(self, before: int) -> bool:
        """Eval / checkpoint bookkeeping after env steps `before` -> `self.env_steps`.

        Returns True when a checkpoint was written (the caller then starts a new segment).
        """
        after = self.env_steps
        self._bar.update(after - before)
        if self._due(self.cfg.eval.every, before, after) and after < self.cfg.total_steps:
            self._evaluate()
        if self.control.stop_requested:
            self.stopped = True
        wrote = False
        requested, self._ckpt_requested = self._ckpt_requested, False
        if (self._ckpt_due(before, after) or requested) and not self._should_stop():
            self._checkpoint()
            wrote = True
            if requested:  # someone wants the policy now, not only a resumable state
                self._save_bundle()
        return wrote

    # -- off-policy ---------------------------------------------------------------------------
    def _run_off_policy(self) -> None:
        cfg, acfg, n = self.cfg, self.algo_cfg, self.cfg.n_envs
        learning_starts = int(getattr(acfg, 'learning_starts', 100))
        train_freq = max(1, int(getattr(acfg, 'train_freq', 1)))
        gradient_steps = int(getattr(acfg, 'gradient_steps', 1))
        batch_size = int(getattr(acfg, 'batch_size', 256))
        obs = self._reset_envs()
        iteration = self.env_steps // n
        while self.env_steps < cfg.total_steps and not self._should_stop():
            x = policy_input(obs)
            if self.normalizer is not None:
                self.normalizer.update(x)
            if self.env_steps < learning_starts:
                actions = self.rng.uniform(-1.0, 1.0, (n, self.act_dim)).astype(np.float32)
            else:
                actions = self.agent.act(self._norm(x), deterministic=False)
            next_obs, rew, terminated, truncated, infos = self.envs.step(actions)
            before = self.env_steps
            self.env_steps += n
            iteration += 1
            # A checkpoint after this step ends every episode here (see module docstring).
            cut = self._segment_ends(before)
            trunc_store = np.logical_or(truncated, cut)
            real_next = final_observations(next_obs, infos)
            if self.cfg.her is not None:  # the HER buffer stores the dict observations
                self.buffer.add(obs, actions, rew, real_next, terminated, trunc_store)
            else:
                self.buffer.add(x, actions, rew, policy_input(real_next), terminated,
                                trunc_store)
            self._episode_stats(rew, terminated, truncated)
            done_idx = np.flatnonzero(np.logical_or(terminated, truncated))
            if done_idx.size and hasattr(self.agent, 'reset_noise'):
                self.agent.reset_noise(done_idx)
            obs = next_obs
            if self.env_steps >= learning_starts and iteration % train_freq == 0:
                steps = gradient_steps if gradient_steps > 0 else train_freq * n
                if hasattr(self.agent, 'set_progress'):
                    self.agent.set_progress(1.0 - self.env_steps / cfg.total_steps)
                for _ in range(steps):
                    batch = self.buffer.sample(batch_size)
                    if self.normalizer is not None:
                        batch.obs = self._norm_t(batch.obs)
                        batch.next_obs = self._norm_t(batch.next_obs)
                    self.last_metrics = self.agent.update(batch)
            if self._after_steps(before):
                obs = self._reset_envs()

    def _episode_stats(self, rew: np.ndarray, terminated: np.ndarray,
                       truncated: np.ndarray) -> None:
        self.ep_returns += rew
        for i in np.flatnonzero(np.logical_or(terminated, truncated)):
            self.recent_returns.append(float(self.ep_returns[i]))
            self.ep_returns[i] = 0.0
            self.episodes += 1

    # -- on-policy ----------------------------------------------------------------------------
    def _run_on_policy(self) -> None:
        from rl_control.algos.types import Rollout

        cfg, n = self.cfg, self.cfg.n_envs
        n_steps = int(getattr(self.algo_cfg, 'n_steps', 5))
        obs = self._reset_envs()
        while self.env_steps < cfg.total_steps and not self._should_stop():
            xs, acts, rews, terms, truncs, vals, tvals = [], [], [], [], [], [], []
            before = self.env_steps
            for _ in range(n_steps):
                x = policy_input(obs)
                if self.normalizer is not None:
                    self.normalizer.update(x)
                xn = self._norm(x).astype(np.float32)
                act, act_env, value = self.agent.act_with_value(xn)
                next_obs, rew, terminated, truncated, infos = self.envs.step(act_env)
                self.env_steps += n
                self._episode_stats(rew, terminated, truncated)
                tval = np.zeros(n, np.float32)
                if np.any(truncated):
                    real_next = final_observations(next_obs, infos)
                    xf = self._norm(policy_input(real_next)).astype(np.float32)
                    tval = np.where(truncated, self.agent.value(xf), 0.0).astype(np.float32)
                r = np.asarray(rew, np.float32)
                if self.reward_scaler is not None:
                    r = self.reward_scaler(r, np.logical_or(terminated, truncated))
                xs.append(xn)
                acts.append(act)
                rews.append(r)
                terms.append(terminated)
                truncs.append(truncated)
                vals.append(value)
                tvals.append(tval)
                obs = next_obs
            self._segment_ends(before)  # registers a pending checkpoint request
            last_value = self.agent.value(self._norm(policy_input(obs)).astype(np.float32))

            def t(a: list[Any]) -> torch.Tensor:
                return torch.as_tensor(np.asarray(a, np.float32))

            rollout = Rollout(obs=t(xs), act=t(acts), rew=t(rews), terminated=t(terms),
                              truncated=t(truncs), values=t(vals), truncated_values=t(tvals),
                              last_value=t(last_value))
            if hasattr(self.agent, 'set_progress'):
                self.agent.set_progress(1.0 - self.env_steps / cfg.total_steps)
            self.last_metrics = self.agent.update(rollout)
            if self._after_steps(before):
                obs = self._reset_envs()

    # -- evaluation, checkpoints, bundle ------------------------------------------------------
    def _act_eval(self, x: np.ndarray) -> np.ndarray:
        return self.agent.act(self._norm(x), deterministic=True)

    def _evaluate(self) -> dict[str, Any]:
        seed = self.cfg.seed + _EVAL_SEED_OFFSET + self.n_evals * self.cfg.eval.episodes
        res: EvalResult = self.evaluator.run(self._act_eval, seed)
        self.n_evals += 1
        wall = self._wall()
        row: dict[str, Any] = {
            'step': self.env_steps, 'wall_s': wall, 'episodes': self.episodes,
            'updates': int(getattr(self.agent, 'n_updates', 0)),
            'steps_per_s': self.env_steps / wall if wall > 0 else None,
            'train_mean_return': (float(np.mean(self.recent_returns))
                                  if self.recent_returns else None),
            'eval_mean_return': res.mean_return, 'eval_std_return': res.std_return,
            'success_rate': res.success_rate,
        }
        row.update({k: float(v) for k, v in self.last_metrics.items()})
        self.logger.row(row)
        self.last_eval = row
        if self.best_eval is None or row['eval_mean_return'] > self.best_eval['eval_mean_return']:
            self.best_eval = row
        if self.cfg.target_return is not None and res.mean_return >= self.cfg.target_return:
            self.reached_target = True
        post = f'eval {res.mean_return:.1f}±{res.std_return:.1f}'
        if res.success_rate is not None:
            post += f' success {res.success_rate:.2f}'
        self._bar.set_postfix_str(post, refresh=False)
        for cb in self.callbacks:
            if cb.on_eval(dict(row)) is False:
                self.stopped = True
        return row

    def _state(self) -> dict[str, Any]:
        buffer_state = None
        if self.buffer is not None and self.cfg.save_replay_buffer:
            buffer_state = _object_state(self.buffer)
        return {
            'format': 'rl_control.checkpoint/1',
            'config': self.cfg.to_dict(),
            'agent': self.agent.state_dict(),
            'normalizer': _object_state(self.normalizer),
            'reward_scaler': _object_state(self.reward_scaler),
            'buffer': buffer_state,
            'rng': rng_state(),
            'loop_rng': self.rng.bit_generator.state,
            'counters': {'env_steps': self.env_steps, 'episodes': self.episodes,
                         'segment': self.segment, 'n_evals': self.n_evals,
                         'wall_s': self._wall()},
            'recent_returns': list(self.recent_returns),
            'last_metrics': dict(self.last_metrics),
            'last_eval': self.last_eval, 'best_eval': self.best_eval,
        }

    def _checkpoint(self) -> Path:
        """Save the state at a segment boundary; the caller resets the envs afterwards."""
        self.segment += 1  # the state records the segment that starts after this checkpoint
        path = save_checkpoint(self.ckpt_dir, self.env_steps, self._state())
        for cb in self.callbacks:
            cb.on_checkpoint(path, self.env_steps)
        return path

    def restore(self) -> None:
        """Load `checkpoints/latest` (no-op when there is none: the run starts fresh)."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            return
        state = load_checkpoint(path)
        self._check_same_run(state['config'], path)
        self.agent.load_state_dict(state['agent'])
        _load_object_state(self.normalizer, state['normalizer'])
        _load_object_state(self.reward_scaler, state['reward_scaler'])
        if self.buffer is not None and state['buffer'] is not None:
            _load_object_state(self.buffer, state['buffer'])
        set_rng_state(state['rng'])
        self.rng.bit_generator.state = state['loop_rng']
        c = state['counters']
        self.env_steps, self.episodes = c['env_steps'], c['episodes']
        self.segment, self.n_evals, self.wall_offset = c['segment'], c['n_evals'], c['wall_s']
        self.recent_returns.extend(state['recent_returns'])
        self.last_metrics = state['last_metrics']
        self.last_eval, self.best_eval = state['last_eval'], state['best_eval']
        self.resume_step = self.env_steps

    _MUST_MATCH = ('env', 'algo', 'n_envs', 'env_kwargs', 'time_limit', 'normalize_obs',
                   'normalize_reward', 'her', 'algo_kwargs')

    def _check_same_run(self, saved: dict[str, Any], path: Path) -> None:
        """Refuse to resume a checkpoint into a different problem.

        total_steps, eval settings and checkpoint cadence may change; task and learner not.
        """
        now = self.cfg.to_dict()
        diff = [k for k in self._MUST_MATCH if saved.get(k) != now.get(k)]
        if diff:
            raise ResumeError(f'{path}: cannot resume: the config differs from the checkpoint\'s '
                             f'in {", ".join(diff)} (saved: '
                             f'{ {k: saved.get(k) for k in diff} })')

    def _save_bundle(self) -> Path:
        evaluation = None
        if self.last_eval is not None:
            evaluation = {'env_id': self.cfg.env, 'episodes': self.cfg.eval.episodes,
                          'mean_return': self.last_eval['eval_mean_return'],
                          'std_return': self.last_eval['eval_std_return'],
                          'success_rate': self.last_eval['success_rate'],
                          'step': self.last_eval['step']}
        return save_bundle(self.run_dir / 'bundle', self.agent, self.normalizer, self.env_meta,
                           self.cfg, evaluation, self.command, total_steps=self.env_steps,
                           wall_s=self._wall())

    def close(self) -> None:
        self.envs.close()
        self.evaluator.close()
        if self.logger is not None:
            self.logger.close()


def _init_params(cls: type) -> set[str]:
    import inspect
    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return set()


def _object_state(obj: Any) -> Any:
    """The object's state_dict(), or else its attributes minus callables.

    Callables are dropped because e.g. a HER buffer's compute_reward is a bound method of an
    unpicklable simulator env.
    """
    if obj is None:
        return None
    if hasattr(obj, 'state_dict'):
        return obj.state_dict()
    return {k: v for k, v in vars(obj).items() if not callable(v)}


def _load_object_state(obj: Any, state: Any) -> None:
    if obj is None or state is None:
        return
    if hasattr(obj, 'load_state_dict'):
        obj.load_state_dict(state)
    else:
        vars(obj).update(state)

