"""Child process: one SAC/TD3 run on a gymnasium MuJoCo robot, rl_control or SB3.

Both sides train with the same hyperparameters (rl_control's `config/<env>_<algo>.yaml`, which
are SB3's defaults plus the RL-Zoo's MuJoCo settings; SB3 gets them spelled out below) and are
evaluated by the SAME function (`evaluate` here: deterministic actions, episode i of evaluation
k reset with seed 10**6 + 1000 * k + i, identical on both sides), every `--eval-every` env steps
and once more after the last step. Prints one JSON line: the evaluation history, wall times and
the machine load at each evaluation (for information: these runs are not timing figures).

    .venv/bin/python bench/mujoco_peer.py --impl sb3 --algo sac --env HalfCheetah-v5 --seed 100
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import tempfile
import time

T0 = float(os.environ.get('BENCH_T0', time.time()))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from solve_check import episode_returns  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {('sac', 'Hopper-v5'): 'config/hopper_sac.yaml',
           ('td3', 'Hopper-v5'): 'config/hopper_td3.yaml',
           ('sac', 'HalfCheetah-v5'): 'config/halfcheetah_sac.yaml',
           ('td3', 'HalfCheetah-v5'): 'config/halfcheetah_td3.yaml'}
EVAL_SEED = 10**6


def evaluate(act, env_id: str, episodes: int, k: int) -> list[float]:
    """Returns of `episodes` deterministic episodes, stepped side by side (one act per step).

    `act` maps a batch of raw observations (n, obs_dim) to actions in the env's own bounds.
    """
    return episode_returns(act, env_id, [EVAL_SEED + 1000 * k + i for i in range(episodes)])


class Recorder:
    """Evaluation history with wall time from process start and the 1-minute load.

    SAC rows also record what the learner looks like on the last 5000 stored transitions
    (`probe` returns their pre-tanh mean and log-std, the min-Q of the stored actions, and the
    entropy coefficient), computed the same way for both libraries and without touching either
    run's random streams:
    - `saturated`: the share of (observation, action dim) whose |mu| exceeds 6, and
      `mean_abs_mu`. Only there do our exact tanh log-prob correction and SB3's
      log(1 - tanh(u)^2 + 1e-6) (SB3 `distributions.py`) differ materially (1 - tanh(6)^2 =
      2.5e-5);
    - `logp_exact` / `logp_eps`: the mean log-prob of a policy sample (fixed noise) under both
      corrections; `alpha`; `q_mean`: the mean over the stored pairs of min_i Q_i(s, a).
    """

    def __init__(self, env_id: str, episodes: int) -> None:
        self.env_id, self.episodes, self.rows = env_id, episodes, []

    def __call__(self, step: int, act, probe=None) -> None:
        rets = evaluate(act, self.env_id, self.episodes, len(self.rows))
        row = {'step': step, 'mean': float(np.mean(rets)), 'returns': rets,
               'wall_s': time.time() - T0, 'load1': os.getloadavg()[0]}
        if probe is not None:
            row.update(probe_stats(*probe()))
        self.rows.append(row)
        print(f'step {step}: eval {np.mean(rets):.1f}', flush=True)


@torch.no_grad()
def probe_stats(mu: torch.Tensor, log_std: torch.Tensor, q: torch.Tensor,
                alpha: float) -> dict:
    """The `Recorder`'s learner statistics from (mu, log_std, min-Q, alpha); see there."""
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    log_std = log_std.clamp(-20.0, 2.0)
    u = mu + log_std.exp() * eps
    gauss = (-0.5 * eps.square() - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    exact = gauss - (2.0 * (np.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))).sum(-1)
    eps_form = gauss - torch.log(1.0 - torch.tanh(u).square() + 1e-6).sum(-1)
    return {'saturated': float((mu.abs() > 6).float().mean()),
            'mean_abs_mu': float(mu.abs().mean()), 'mean_log_std': float(log_std.mean()),
            'logp_exact': float(exact.mean()), 'logp_eps': float(eps_form.mean()),
            'alpha': float(alpha), 'q_mean': float(q.mean())}


def run_ours(a: argparse.Namespace, rec: Recorder) -> dict:
    from rl_control.train.config import load_config
    from rl_control.train.learn import train

    sets = [f'seed={a.seed}', f'total_steps={a.steps}', f'eval.every={a.eval_every}',
            'eval.episodes=1', 'checkpoint_every=null', 'save_replay_buffer=false',
            'tensorboard=false', *a.set]
    cfg = load_config(ROOT / CONFIGS[a.algo, a.env], sets)
    space = gym.make(a.env).action_space
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    state: dict = {}

    def act(x: np.ndarray) -> np.ndarray:
        u = state['trainer'].agent.act(x.astype(np.float32), deterministic=True)
        return low + (u + 1.0) * 0.5 * (high - low)

    @torch.no_grad()
    def probe():
        from rl_control.algos.networks import min_heads
        tr = state['trainer']
        ag, b, n = tr.agent, tr.buffer, tr.act_dim
        sl = slice(max(0, b.size - 5000), b.size)
        obs, act_ = torch.as_tensor(b.obs[sl]), torch.as_tensor(b.act[sl])
        mu, log_std = ag.actor.net(obs).split(n, dim=-1)
        return mu, log_std, min_heads(ag.critic(obs, act_)), float(ag.log_alpha.exp())

    def on_eval(info: dict) -> None:
        rec(int(info['step']), act, probe if a.algo == 'sac' else None)

    from rl_control.train import learn
    init = learn.Trainer.__init__

    def capture(self, *args, **kwargs):  # the agent the callback evaluates
        init(self, *args, **kwargs)
        state['trainer'] = self

    learn.Trainer.__init__ = capture
    with tempfile.TemporaryDirectory() as out:
        train(cfg, out, progress=False, callbacks=[on_eval])
    return {'config': CONFIGS[a.algo, a.env], 'overrides': sets}


def sb3_kwargs(algo: str, env, seed: int, sets: list[str]) -> dict:
    """SB3's constructor arguments equal to our config's (with `sets` applied)."""
    from rl_control.train.config import load_config
    cfg = load_config(ROOT / CONFIGS[algo, env.spec.id], sets)
    ak = cfg.algo_config
    kw = dict(learning_rate=ak.lr, buffer_size=ak.buffer_size, learning_starts=ak.learning_starts,
              batch_size=ak.batch_size, tau=ak.tau, gamma=ak.gamma, train_freq=ak.train_freq,
              gradient_steps=ak.gradient_steps,
              policy_kwargs=dict(net_arch=list(ak.hidden_sizes)), seed=seed, device='cpu')
    if algo == 'sac':
        kw.update(ent_coef=ak.ent_coef, target_entropy=ak.target_entropy)
    else:
        from stable_baselines3.common.noise import NormalActionNoise
        act_dim = env.action_space.shape[0]
        assert ak.action_noise == 'gaussian'
        kw.update(policy_delay=ak.policy_delay, target_policy_noise=ak.target_noise,
                  target_noise_clip=ak.target_noise_clip,
                  action_noise=NormalActionNoise(np.zeros(act_dim), ak.noise_sigma *
                                                 np.ones(act_dim)))
    return kw


def run_sb3(a: argparse.Namespace, rec: Recorder) -> dict:
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback

    env = gym.make(a.env)
    kw = sb3_kwargs(a.algo, env, a.seed, a.set)
    model = {'sac': sb3.SAC, 'td3': sb3.TD3}[a.algo]('MlpPolicy', env, verbose=0, **kw)

    def act(x: np.ndarray) -> np.ndarray:
        return model.predict(x, deterministic=True)[0]

    @torch.no_grad()
    def probe():
        rb = model.replay_buffer
        sl = slice(max(0, rb.pos - 5000), rb.pos)
        obs = torch.as_tensor(rb.observations[sl, 0]).float()
        act_ = torch.as_tensor(rb.actions[sl, 0]).float()
        mu, log_std, _ = model.actor.get_action_dist_params(obs)
        q = torch.min(torch.cat(model.critic(obs, act_), dim=1), dim=1).values
        return mu, log_std, q, float(model.log_ent_coef.exp())

    sat = probe if a.algo == 'sac' else None

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % a.eval_every == 0 and self.num_timesteps < a.steps:
                rec(self.num_timesteps, act, sat)
            return True

    model.learn(a.steps, callback=Every())
    rec(model.num_timesteps, act, sat)
    kw.pop('action_noise', None)
    return {'sb3_version': sb3.__version__, 'kwargs': kw}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--impl', choices=['ours', 'sb3'], required=True)
    p.add_argument('--algo', choices=['sac', 'td3'], required=True)
    p.add_argument('--env', choices=sorted({e for _, e in CONFIGS}), required=True)
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--steps', type=int, default=100_000)
    p.add_argument('--eval-every', type=int, default=10_000)
    p.add_argument('--eval-episodes', type=int, default=10)
    p.add_argument('--set', action='append', default=[],
                   help='config override (algo_kwargs.* apply to SB3 too)')
    a = p.parse_args()
    torch.set_num_threads(1)
    rec = Recorder(a.env, a.eval_episodes)
    info = (run_ours if a.impl == 'ours' else run_sb3)(a, rec)
    print(json.dumps({'impl': a.impl, 'algo': a.algo, 'env': a.env, 'seed': a.seed,
                      'steps': a.steps, 'evals': rec.rows, 'wall_s': time.time() - T0,
                      'load1_end': os.getloadavg()[0], **info}))


if __name__ == '__main__':
    main()
