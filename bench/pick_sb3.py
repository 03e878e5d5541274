"""Stable-Baselines3 SAC + HER on rl_control/FrankaPickPlace-v1 at a training config's settings.

The issue-21 reference: SB3 (`SAC`, `HerReplayBuffer`, `VecNormalize` for the observations) on
the very env `rl-control train` uses, with the config's hyperparameters in SB3's names (networks,
lr, gamma, tau, batch, buffer, learning_starts, HER future k), the same demonstrations put into
its replay buffer first (the env's `demo_policy()` with the config's episodes, action noise and
seed, as train/demos.py does; SB3 has no such option, so this script adds them through its
buffer's `add`, as its own `_store_transition` would), and evaluated by rl_control's own
`Evaluator` on the same episode seeds as `rl-control train` (20 deterministic episodes of the
config's eval length every `eval.every` env steps). Demonstration steps are not counted in
either library's env steps. Wall time counts everything (evaluations too), as ours does.
SB3 has no behaviour-cloning term: a config's `demos.bc_weight` (train/demos.py) is not
applied here, and the script says so; the comparison then measures that term.

  .venv/bin/python bench/pick_sb3.py --config config/franka_pick_place_sac.yaml --seed 100 \
      --out runs/pick_sb3_s100

Writes OUT/progress.csv (step, wall_s, success_rate, eval_mean_return) after every evaluation
and a resumable checkpoint (model, replay buffer, normalizer) every `checkpoint_every` steps;
run the same command again to resume from it (SB3's resume restarts the running episode).
`--bench N` instead runs the checkpoint's policy on the first N fixed episodes of `rl-control
bench-pick` (envs/pick_bench.py: nominal, from the table) and prints its summary as JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
import time

import numpy as np
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
import torch

from rl_control.envs.factory import make_env
from rl_control.train.config import load_config
from rl_control.train.demos import DEMO_SEED_OFFSET
from rl_control.train.evaluation import Evaluator
from rl_control.train.learn import _EVAL_SEED_OFFSET

FIELDS = ('step', 'wall_s', 'success_rate', 'eval_mean_return')


def sb3_kwargs(cfg) -> dict:
    """The config's SAC + HER settings in SB3's names (SB3 defaults elsewhere, as ours)."""
    a = cfg.algo_config
    return dict(learning_rate=a.lr, gamma=a.gamma, tau=a.tau, batch_size=a.batch_size,
                buffer_size=a.buffer_size, learning_starts=a.learning_starts,
                replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs=dict(n_sampled_goal=cfg.her.k, copy_info_dict=True,
                                          goal_selection_strategy=cfg.her.strategy),
                policy_kwargs=dict(net_arch=list(a.hidden_sizes)))


def prefill(model: SAC, venv: VecNormalize, episodes: int, noise: float, seed: int) -> int:
    """The demonstrations into SB3's buffer (original observations, as SB3 stores them)."""
    policy = venv.venv.envs[0].unwrapped.demo_policy()
    rng = np.random.default_rng(seed)
    venv.seed(seed)
    venv.reset()
    orig = venv.get_original_obs()
    done_eps = steps = 0
    while done_eps < episodes:
        x = np.r_[orig['observation'][0], orig['desired_goal'][0]]
        act = np.clip(policy.act(x) + rng.normal(0.0, noise, venv.action_space.shape),
                      -1.0, 1.0).astype(np.float32)[None]
        _, _, dones, infos = venv.step(act)
        new = venv.get_original_obs()
        nxt = {k: v.copy() for k, v in new.items()}
        if dones[0]:
            term = venv.unnormalize_obs(infos[0]['terminal_observation'])
            nxt = {k: np.asarray(term[k])[None] for k in nxt}
        model.replay_buffer.add(orig, nxt, act, venv.get_original_reward(), dones, infos)
        orig = new
        done_eps += int(dones[0])
        steps += 1
    return steps


class EvalAndSave(BaseCallback):
    """Every `every` steps: rl_control's Evaluator on ours' seeds; checkpoints; progress.csv."""

    def __init__(self, cfg, out: Path, t0: float, n_evals: int) -> None:
        super().__init__()
        self.cfg, self.out, self.t0, self.n_evals = cfg, out, t0, n_evals
        self.evaluator = Evaluator(cfg.env, cfg.eval.episodes, cfg.eval.kwargs(cfg.env_kwargs),
                                   cfg.eval.episode_steps(cfg.time_limit))
        spec = self.evaluator.envs[0].unwrapped._obs_spec
        self.obj = spec.term_slice('object_pose')

    def act(self, x: np.ndarray) -> np.ndarray:
        obs = {'observation': x[:, :-3], 'desired_goal': x[:, -3:],
               'achieved_goal': x[:, :-3][:, self.obj][:, :3]}
        obs = self.training_env.normalize_obs(obs)
        return self.model.predict(obs, deterministic=True)[0]

    def _on_step(self) -> bool:
        step = self.num_timesteps
        if step % self.cfg.eval.every == 0:
            seed = self.cfg.seed + _EVAL_SEED_OFFSET + self.n_evals * self.cfg.eval.episodes
            res = self.evaluator.run(self.act, seed)
            self.n_evals += 1
            row = {'step': step, 'wall_s': round(time.perf_counter() - self.t0, 1),
                   'success_rate': res.success_rate, 'eval_mean_return': res.mean_return}
            with open(self.out / 'progress.csv', 'a', newline='') as f:
                csv.DictWriter(f, FIELDS).writerow(row)
            print(json.dumps(row), flush=True)
        every = self.cfg.checkpoint_every
        if every and step % every == 0:
            save(self.model, self.out, {'step': step, 'wall_s': time.perf_counter() - self.t0,
                                        'n_evals': self.n_evals})
        return True


def bench(cfg, out: Path, episodes: int) -> dict:
    """The checkpoint's deterministic policy on bench-pick's fixed episodes (MuJoCo)."""
    from rl_control.envs import pick_bench

    ck = out / 'checkpoint'
    env = pick_bench.make_env(None, False)  # the config's env at nominal dynamics
    venv = VecNormalize.load(str(ck / 'vecnormalize.pkl'), DummyVecEnv(
        [lambda: make_env(cfg.env, 0, cfg.env_kwargs, cfg.time_limit)]))
    venv.training = False
    model = SAC.load(ck / 'model', env=venv, device='cpu')
    obj = env._obs_spec.term_slice('object_pose')

    class Policy:
        def act(self, x: np.ndarray) -> np.ndarray:
            o = {'observation': x[None, :-3], 'desired_goal': x[None, -3:],
                 'achieved_goal': x[None, :-3][:, obj][:, :3]}
            return model.predict(venv.normalize_obs(o), deterministic=True)[0][0]

    cubes, goals = pick_bench.load_episodes(pick_bench.default_episodes_file())
    results = pick_bench.run_episodes(env, Policy(), cubes[:episodes], goals[:episodes])
    summary = env.task.summarize(results)
    summary.update(step=json.loads((ck / 'state.json').read_text())['step'],
                   solved_at_start=sum(r['solved_at_start'] for r in results))
    env.close()
    return summary


def save(model: SAC, out: Path, state: dict) -> None:
    """Model, buffer, normalizer, then the state file that says the three are whole."""
    ck = out / 'checkpoint'
    ck.mkdir(exist_ok=True)
    model.save(ck / 'model')
    model.save_replay_buffer(ck / 'buffer')
    model.get_vec_normalize_env().save(str(ck / 'vecnormalize.pkl'))
    (ck / 'state.json').write_text(json.dumps(state))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True)
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--steps', type=int, default=None, help='default: the config total_steps')
    p.add_argument('--out', type=Path, required=True)
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override, as rl-control train --set')
    p.add_argument('--bench', type=int, default=0, metavar='N',
                   help="run the checkpoint on bench-pick's first N episodes instead")
    a = p.parse_args()
    cfg = load_config(a.config, [f'seed={a.seed}', *a.set])
    if a.bench:
        print(json.dumps(bench(cfg, a.out, a.bench)))
        return
    steps = a.steps or cfg.total_steps
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    venv = DummyVecEnv([lambda: make_env(cfg.env, a.seed, cfg.env_kwargs, cfg.time_limit)])
    ck = a.out / 'checkpoint'
    t0 = time.perf_counter()
    if (ck / 'state.json').is_file():  # resume
        state = json.loads((ck / 'state.json').read_text())
        venv = VecNormalize.load(str(ck / 'vecnormalize.pkl'), venv)
        model = SAC.load(ck / 'model', env=venv, device='cpu')
        model.load_replay_buffer(ck / 'buffer')
        t0 -= state['wall_s']
        done, n_evals = state['step'], state['n_evals']
        print(f'resumed at step {done}', flush=True)
    else:
        (a.out / 'progress.csv').write_text(','.join(FIELDS) + '\n')
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, gamma=cfg.algo_config.gamma)
        model = SAC('MultiInputPolicy', venv, seed=a.seed, device='cpu', verbose=0,
                    **sb3_kwargs(cfg))
        if cfg.demos is not None:
            n = prefill(model, venv, cfg.demos.episodes, cfg.demos.noise,
                        a.seed + DEMO_SEED_OFFSET)
            print(f'demonstrations: {cfg.demos.episodes} episodes, {n} steps', flush=True)
            if cfg.demos.bc_weight > 0:
                print(f'note: demos.bc_weight {cfg.demos.bc_weight} is not applied (SB3 has no '
                      'behaviour-cloning term)', flush=True)
        done, n_evals = 0, 0
    cb = EvalAndSave(cfg, a.out, t0, n_evals)
    model.learn(total_timesteps=steps - done, callback=cb, reset_num_timesteps=done == 0)
    save(model, a.out, {'step': model.num_timesteps, 'wall_s': time.perf_counter() - t0,
                        'n_evals': cb.n_evals})


if __name__ == '__main__':
    main()
