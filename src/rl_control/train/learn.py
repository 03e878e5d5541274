"""`train`: one run from a config, as SB3's `learn` (collectors and persistence do the work).

The run alternates a collector step (`offpolicy.py`, `onpolicy.py`) with the schedule's
bookkeeping (`schedule.py`): evaluation on separate envs, checkpoints, stop requests, the
target-return stop. At the end: a final evaluation, the policy bundle, a checkpoint and the
learning-curve plot (the small bundle first: a disk that fills up on the large checkpoint
keeps the policy).

Faults (`signals.py`, `finite.py`, persistence.py `RunLock`): SIGINT and SIGTERM stop the run at
the next step and it ends as above without the final evaluation (the bundle records the last
one); NaN or inf in an observation, a reward or a loss stops it at once, writing nothing more,
so the last good checkpoint and bundle stay; a second run on the same run directory is refused.

Exact resume. A checkpoint holds everything that is not a pure function of its contents:
agent (networks, optimizers, generators), normalizers, replay buffer, every RNG, counters,
progress rows, the collectors' latest observations and a snapshot of every env
(`envs/snapshot.py`; with `vec_env: async` they are taken inside the env worker processes,
in the same format). Taking one therefore changes nothing about the run: a run killed after a
checkpoint and resumed continues bit for bit like one never interrupted, and
`checkpoint_every` is no learning hyperparameter. Envs that cannot be snapshotted (panda-gym's
PyBullet envs) fall back to a segment boundary: their running episodes end at the checkpoint
(stored as time-limit truncations, so targets bootstrap through them) and every env is reset
with a seed derived from (seed, segment); an uninterrupted run does the same at the same
steps, so resume stays exact, but then the cadence does change what is learned (a warning
says so).

Random streams: python/numpy/torch global RNGs are seeded from `seed`; the warm-up actions,
the replay sampling and the agent get independent streams spawned from
`numpy.random.SeedSequence(seed)`, so no two consumers share or overlap a stream.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
import random
import sys
import time
from typing import Any
import warnings

import numpy as np
import torch

from rl_control.algos.registry import get_algorithm
from rl_control.bundle import save_bundle
from rl_control.envs.factory import env_metadata, make_vec_env, obs_dims, template_env
from rl_control.envs.snapshot import set_vector_env_state, vector_env_state
from rl_control.train import build
from rl_control.train.config import TrainConfig
from rl_control.train.control import Callback, FnCallback, TrainControl, TrainResult
from rl_control.train.demos import DemoPrefill
from rl_control.train.episodes import EpisodeStats
from rl_control.train.evaluation import EvalResult, Evaluator
from rl_control.train.finite import NonFiniteError, check_losses
from rl_control.train.logger import RunLogger
from rl_control.train.offpolicy import OffPolicyCollector
from rl_control.train.onpolicy import OnPolicyCollector
from rl_control.train.persistence import (
    CHECKPOINT_FORMAT,
    ResumeError,
    RunLock,
    RunLockError,
    check_resumable,
    load_latest,
    load_object_state,
    object_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from rl_control.train.schedule import Schedule
from rl_control.train.signals import stop_on_signals

__all__ = ['Callback', 'NonFiniteError', 'ResumeError', 'RunLockError', 'TrainControl',
           'TrainResult', 'seed_everything', 'train']

_SEGMENT_SEED_STRIDE = 7919  # fallback segment k resets env i with seed + k * stride + i
_EVAL_SEED_OFFSET = 1_000_000  # eval episode seeds never coincide with training seeds


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
    Raises RunLockError (another run writes `out_dir`), ResumeError, NonFiniteError.
    """
    cbs = [c if isinstance(c, Callback) else FnCallback(c) for c in (callbacks or [])]
    if cfg.demos is not None:  # first: the others start on the prefilled run
        cbs.insert(0, DemoPrefill(cfg.demos))
    control = control or TrainControl()
    with RunLock(out_dir), stop_on_signals(control):
        trainer = Trainer(cfg, Path(out_dir), progress, cbs, control,
                          command or ' '.join(sys.argv))
        try:
            if resume:
                trainer.restore()
            return trainer.run()
        finally:
            trainer.close()


class Trainer:
    """The state of one run and its main loop."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, progress: bool,
                 callbacks: list[Callback], control: TrainControl, command: str) -> None:
        self._t0 = time.perf_counter()  # wall_s counts env/agent construction too
        self.cfg, self.run_dir, self.progress = cfg, run_dir, progress
        self.callbacks, self.control, self.command = callbacks, control, command
        self.spec = get_algorithm(cfg.algo)
        self.algo_cfg = cfg.algo_config if cfg.algo_config is not None else \
            self.spec.make_config(cfg.algo_kwargs)
        seed_everything(cfg.seed)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        warmup_seed, replay_seed, agent_seed = np.random.SeedSequence(cfg.seed).spawn(3)
        self.envs = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, cfg.env_kwargs, cfg.time_limit,
                                 kind=cfg.vec_env)
        space = self.envs.single_observation_space
        self.obs_dim, self.goal_dim = obs_dims(space)
        self.act_dim = int(np.prod(self.envs.single_action_space.shape))
        self.env_meta = env_metadata(template_env(self.envs), cfg.env, cfg.env_kwargs,
                                     cfg.time_limit)
        self.device = build.resolve_device(cfg.device, self.spec.agent_cls)
        self.agent = build.make_agent(self.spec, self.obs_dim, self.act_dim, self.algo_cfg,
                                      cfg.n_envs, int(agent_seed.generate_state(1)[0]),
                                      self.device)
        self.normalizer = build.make_normalizer(cfg, self.obs_dim)
        self.reward_scaler = build.make_reward_scaler(cfg, self.algo_cfg)
        self.stats = EpisodeStats(cfg.n_envs)
        if self.spec.on_policy:
            self.buffer = None
            self.collector: Any = OnPolicyCollector(self.envs, self.agent, self.normalizer,
                                                    self.reward_scaler, self.algo_cfg,
                                                    self.stats)
        else:
            self.buffer = build.make_buffer(cfg, self.algo_cfg, self.envs, replay_seed,
                                            self.device)
            self.collector = OffPolicyCollector(
                self.envs, self.agent, self.buffer, self.normalizer, self.algo_cfg,
                cfg.her is not None, np.random.default_rng(warmup_seed), self.stats,
                self.reward_scaler)
        self.schedule = Schedule(cfg.total_steps, cfg.eval.every, cfg.checkpoint_every)
        self.evaluator = Evaluator(cfg.env, cfg.eval.episodes, cfg.eval.kwargs(cfg.env_kwargs),
                                   cfg.eval.episode_steps(cfg.time_limit))
        self.snapshots = vector_env_state(self.envs) is not None
        if not self.snapshots and cfg.checkpoint_every is not None:
            warnings.warn(f'{cfg.env}: its state cannot be saved, so each checkpoint ends the '
                          'running episodes: checkpoint_every changes what is learned',
                          stacklevel=2)
        # Counters (all checkpointed).
        self.env_steps = 0
        self.segment = 0
        self.n_evals = 0
        self.wall_offset = 0.0
        self.last_metrics: dict[str, float] = {}
        self.last_eval: dict[str, Any] | None = None
        self.best_eval: dict[str, Any] | None = None
        self.reached_target = False
        self.stopped = False
        self.resume_step: int | None = None
        self.restored_envs = False
        self._ckpt_request = False
        self.ckpt_dir = run_dir / 'checkpoints'
        self.logger: RunLogger | None = None

    # -- running ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """The main loop, then the final evaluation, checkpoint, bundle and plot."""
        self.logger = RunLogger(self.run_dir, self.cfg.tensorboard, self.resume_step)
        from tqdm import tqdm
        self._bar = tqdm(total=self.cfg.total_steps, initial=self.env_steps, unit='step',
                         disable=not self.progress, dynamic_ncols=True, mininterval=0.5,
                         desc=f'{self.cfg.algo} {self.cfg.env}', file=sys.stderr)
        for cb in self.callbacks:
            cb.on_start(self)
        try:
            if not self.restored_envs:
                self._reset_envs()
            while not self.schedule.done(self.env_steps) and not self._should_stop():
                before = self.env_steps
                try:
                    if self.spec.on_policy:
                        self._on_policy_iteration()
                    else:
                        self._off_policy_iteration()
                except NonFiniteError as exc:
                    raise NonFiniteError(
                        f'step {self.env_steps + exc.offset}: {exc.what}: training stopped; '
                        f'the last checkpoint and bundle in {self.run_dir} are kept') from None
                self._bookkeeping(before)
        finally:
            self._bar.close()
        by_signal = self.control.stop_signal
        if by_signal is None and (self.last_eval is None or self.last_eval['step'] !=
                                  self.env_steps):
            self._evaluate()
        self.stopped = self.stopped or by_signal is not None
        bundle = self._save_bundle()  # first: small, and what the run is for
        ckpt = self._checkpoint()
        history = list(self.logger.rows)
        png = self.logger.close(f'{self.cfg.algo.upper()} on {self.cfg.env}',
                                self.cfg.target_return)
        self.logger = None
        result = TrainResult(self.run_dir, bundle, png, self.env_steps, self.wall_s(),
                             self.last_eval, self.best_eval, self.reached_target, self.stopped,
                             list(history), ckpt, by_signal)
        for cb in self.callbacks:
            cb.on_end(result)
        return result

    def _off_policy_iteration(self) -> None:
        before = self.env_steps
        self.env_steps += self.cfg.n_envs
        self._ckpt_request = self.control.take_checkpoint_request()
        self.collector.step(before, cut=self._cut_here(before))
        metrics = self.collector.train(self.env_steps, self.cfg.total_steps)
        if metrics is not None:
            check_losses(metrics)
            self.last_metrics = metrics

    def _on_policy_iteration(self) -> None:
        rollout = self.collector.collect()
        self.env_steps += self.collector.n_steps * self.cfg.n_envs
        self._ckpt_request = self.control.take_checkpoint_request()
        self.agent.set_progress(1.0 - self.env_steps / self.cfg.total_steps)
        self.last_metrics = self.agent.update(rollout)
        check_losses(self.last_metrics)

    def _cut_here(self, before: int) -> bool:
        """Fallback only (no env snapshots): whether the running episodes end after this step.

        Decided before the transitions are stored, so that they are stored as truncated and a
        resumed run sees the same buffer.
        """
        if self.snapshots:
            return False
        return (self.schedule.checkpoint_due(before, self.env_steps) or self._ckpt_request
                or self.control.stop_requested or self.schedule.done(self.env_steps))

    def _bookkeeping(self, before: int) -> None:
        """Eval / checkpoint / stop after env steps `before` -> `self.env_steps`."""
        after = self.env_steps
        self._bar.update(after - before)
        if self.schedule.eval_due(before, after):
            self._evaluate()
        if self.control.stop_requested:
            self.stopped = True
        requested = self._ckpt_request
        if (self.schedule.checkpoint_due(before, after) or requested) and not \
                self._should_stop():
            if requested:  # someone wants the policy now, not only a resumable state
                self._save_bundle()
            self._checkpoint()
            if not self.snapshots:
                self._reset_envs()

    def _should_stop(self) -> bool:
        return self.stopped or self.reached_target or self.control.stop_requested

    def _reset_envs(self) -> None:
        self.collector.reset(self.cfg.seed + self.segment * _SEGMENT_SEED_STRIDE)

    def wall_s(self) -> float:
        """Run time so far, counting the time before a resume."""
        return self.wall_offset + time.perf_counter() - self._t0

    def exclude_time(self, seconds: float) -> None:
        """Take `seconds` spent measuring (not training) off the run's clock (`wall_s`)."""
        self.wall_offset -= seconds

    def act(self, x: np.ndarray) -> np.ndarray:
        """The current deterministic policy on raw policy inputs (as evaluations run it)."""
        return self._act_eval(x)

    # -- evaluation ---------------------------------------------------------------------------
    def _act_eval(self, x: np.ndarray) -> np.ndarray:
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return self.agent.act(x, deterministic=True)

    def _evaluate(self) -> dict[str, Any]:
        seed = self.cfg.seed + _EVAL_SEED_OFFSET + self.n_evals * self.cfg.eval.episodes
        res: EvalResult = self.evaluator.run(self._act_eval, seed)
        self.n_evals += 1
        wall = self.wall_s()
        row: dict[str, Any] = {
            'step': self.env_steps, 'wall_s': wall, 'episodes': self.stats.episodes,
            'updates': int(getattr(self.agent, 'n_updates', 0)),
            'steps_per_s': self.env_steps / wall if wall > 0 else None,
            'train_mean_return': self.stats.recent_mean,
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
        if (self.cfg.target_success is not None and res.success_rate is not None
                and res.success_rate >= self.cfg.target_success):
            self.reached_target = True
        post = f'eval {res.mean_return:.1f}±{res.std_return:.1f}'
        if res.success_rate is not None:
            post += f' success {res.success_rate:.2f}'
        self._bar.set_postfix_str(post, refresh=False)
        for cb in self.callbacks:
            if cb.on_eval(dict(row)) is False:
                self.stopped = True
        return row

    # -- checkpoints and bundle ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (see the module docstring)."""
        keep_buffer = self.buffer is not None and self.cfg.save_replay_buffer
        return {
            'format': CHECKPOINT_FORMAT, 'config': self.cfg.to_dict(),
            'agent': self.agent.state_dict(), 'normalizer': object_state(self.normalizer),
            'reward_scaler': object_state(self.reward_scaler),
            'buffer': object_state(self.buffer) if keep_buffer else None,
            'collector': self.collector.state_dict(),
            'envs': vector_env_state(self.envs) if self.snapshots else None,
            'episodes': self.stats.state_dict(), 'rng': rng_state(),
            'counters': {'env_steps': self.env_steps, 'segment': self.segment,
                         'n_evals': self.n_evals, 'wall_s': self.wall_s()},
            'last_metrics': dict(self.last_metrics),
            'last_eval': self.last_eval, 'best_eval': self.best_eval,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict` on a freshly built Trainer of the same config."""
        self.agent.load_state_dict(state['agent'])
        load_object_state(self.normalizer, state['normalizer'])
        load_object_state(self.reward_scaler, state['reward_scaler'])
        if self.buffer is not None and state['buffer'] is not None:
            load_object_state(self.buffer, state['buffer'])
        self.stats.load_state_dict(state['episodes'])
        set_rng_state(state['rng'])
        c = state['counters']
        self.env_steps, self.segment = c['env_steps'], c['segment']
        self.n_evals, self.wall_offset = c['n_evals'], c['wall_s']
        self.last_metrics = state['last_metrics']
        self.last_eval, self.best_eval = state['last_eval'], state['best_eval']
        self.collector.load_state_dict(state['collector'])
        if state['envs'] is not None:
            set_vector_env_state(self.envs, state['envs'])
            self.restored_envs = True

    def _checkpoint(self) -> Path:
        if not self.snapshots:
            self.segment += 1  # the state records the segment that starts after it
        path = save_checkpoint(self.ckpt_dir, self.env_steps, self.state_dict())
        for cb in self.callbacks:
            cb.on_checkpoint(path, self.env_steps)
        return path

    def restore(self) -> None:
        """Load `checkpoints/latest` (no-op when there is none: the run starts fresh).

        An unreadable `latest` falls back to the previous checkpoint, with a warning.
        """
        found = load_latest(self.ckpt_dir, lambda text: print(f'warning: {text}',
                                                              file=sys.stderr, flush=True))
        if found is None:
            return
        path, state = found
        check_resumable(state, self.cfg.to_dict(), path)
        self.load_state_dict(state)
        self.resume_step = self.env_steps

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
                           wall_s=self.wall_s())

    def close(self) -> None:
        """Release the envs and the logger."""
        self.envs.close()
        self.evaluator.close()
        if self.logger is not None:
            self.logger.close()
