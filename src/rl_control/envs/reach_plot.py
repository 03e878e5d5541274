"""One picture of reach episodes: does the arm get there, and does it stop there.

Three panels over the episodes' per-control-period samples (`EpisodeTrace.result()`'s
`distances` and `joint_speeds`): the end-effector distance to the goal over time, the fastest
joint's speed over time (log scale, with the at-rest line), and each episode's time to settle.
Used by `rl-control demo`, `rl-control bench-reach --plot` and bench/.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_control.envs.reach_metrics import HOLD_S, REST_JOINT_SPEED


def plot_episodes(results: list[dict[str, Any]], threshold: float, period_s: float,
                  path: str | Path, title: str = '') -> None:
    """Write the PNG; green = held, red = not held, orange = a reflex."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    n = max(len(results), 1)
    held = sum(bool(r.get('held')) for r in results)
    for r in results:
        color = ('tab:orange' if r.get('reflex') else
                 'tab:green' if r.get('held') else 'tab:red')
        d = r.get('distances') or []
        ax1.plot([period_s * (i + 1) for i in range(len(d))], [max(1000 * v, 0.05) for v in d],
                 color=color, alpha=0.4, lw=0.8)
        js = r.get('joint_speeds') or []
        ax2.plot([period_s * (i + 1) for i in range(len(js))], [max(v, 1e-5) for v in js],
                 color=color, alpha=0.4, lw=0.8)
    end = max((len(r.get('distances') or []) for r in results), default=0) * period_s
    for ax in (ax1, ax2):
        ax.axvspan(max(end - HOLD_S, 0.0), end, color='0.9', zorder=0)
        ax.set_xlabel('time in episode [s] (grey: the last second, where held is judged)')
    ax1.axhline(1000 * threshold, color='k', ls='--', lw=1,
                label=f'success distance {1000 * threshold:g} mm')
    ax1.set_yscale('log')
    ax1.set_ylabel('end-effector distance to goal [mm]')
    ax1.set_title(f'held {held}/{len(results)} ({held / n:.0%})')
    ax1.legend(loc='upper right')
    ax2.axhline(REST_JOINT_SPEED, color='k', ls='--', lw=1,
                label=f'at rest < {REST_JOINT_SPEED:g} rad/s')
    ax2.set_yscale('log')
    ax2.set_ylabel('fastest joint speed [rad/s]')
    ax2.set_title('joint speed over time')
    ax2.legend(loc='upper right')
    settle = [r.get('settle_time_s') for r in results]
    ax3.bar(range(1, len(results) + 1), [end if s is None else s for s in settle],
            color=['tab:red' if s is None else 'tab:green' for s in settle])
    ax3.set_xlabel('episode (red: never settled)')
    ax3.set_ylabel('time to settle [s]')
    ax3.set_title('time to settle (within and at rest to the end)')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
