"""Success vs env steps (and vs wall time): `rl-control train` against SB3 + HER on pick and place.

Reads the run directory of `rl-control train --config config/franka_pick_place_sac.yaml` (its
progress.csv) and the output folder of bench/pick_sb3.py (same config and seed), both evaluated
by the same `Evaluator` on the same episode seeds, and writes one PNG (two panels) and a CSV of
both curves side by side.

  .venv/bin/python bench/pick_curves.py --ours runs/pick_s100 --sb3 runs/pick_sb3_s100 \
      --out bench/results/pick_place/success_vs_steps.png
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read(path: Path) -> list[dict[str, float]]:
    """progress.csv rows with step, wall_s and success_rate as numbers."""
    with open(path) as f:
        return [{k: float(r[k]) for k in ('step', 'wall_s', 'success_rate')}
                for r in csv.DictReader(f) if r.get('success_rate') not in (None, '')]


def paused_before(t: float, pauses: list[tuple[float, float]]) -> float:
    """Seconds of the `pauses` (epoch intervals) that fall before epoch time `t`."""
    return sum(max(0.0, min(t, b) - a) for a, b in pauses)


def take_out(rows: list[dict[str, float]], start: float | None,
             pauses: list[tuple[float, float]]) -> list[dict[str, float]]:
    """Each row's wall time minus the pauses (SIGSTOP) between the run's `start` and it."""
    if start is None or not pauses:
        return rows
    return [{**r, 'wall_s': r['wall_s'] - paused_before(start + r['wall_s'], pauses)}
            for r in rows]


def first_at(rows: list[dict[str, float]], level: float) -> dict[str, float] | None:
    """The first evaluation at or above `level`."""
    return next((r for r in rows if r['success_rate'] >= level), None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ours', type=Path, required=True, help='rl-control train run directory')
    p.add_argument('--sb3', type=Path, required=True, help='bench/pick_sb3.py output folder')
    p.add_argument('--out', type=Path, required=True, help='PNG (a CSV beside it)')
    p.add_argument('--level', type=float, default=0.9, help='success level to mark (0.9)')
    p.add_argument('--pause', action='append', default=[], metavar='T0:T1',
                   help='a span (epoch seconds) both runs were stopped (SIGSTOP): taken out '
                        'of their wall times; needs --starts')
    p.add_argument('--starts', type=float, nargs=2, metavar=('OURS', 'SB3'),
                   help="epoch seconds of each run's wall-clock zero")
    p.add_argument('--note', default='', help='a second title line (what the evaluations drew)')
    p.add_argument('--label', default='rl_control SAC + HER', help="the --ours run's legend")
    p.add_argument('--also', action='append', default=[], metavar='LABEL=DIR',
                   help='another rl-control train run to draw (another seed, an ablation); '
                        'its wall clock as it is (no pause taken out)')
    a = p.parse_args()
    pauses = [tuple(float(v) for v in span.split(':')) for span in a.pause]
    starts = a.starts or (None, None)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curves = {a.label: take_out(read(a.ours / 'progress.csv'), starts[0], pauses),
              'SB3 SAC + HER': take_out(read(a.sb3 / 'progress.csv'), starts[1], pauses)}
    for item in a.also:
        label, _, folder = item.partition('=')
        curves[label] = read(Path(folder) / 'progress.csv')
    colors = ('tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple', 'tab:gray')
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for (name, rows), color in zip(curves.items(), colors, strict=False):
        for ax, x, k in ((axes[0], 'step', 1e-3), (axes[1], 'wall_s', 1 / 60)):
            ax.plot([r[x] * k for r in rows], [r['success_rate'] for r in rows], 'o-',
                    color=color, label=name, ms=3)
    for ax, label in zip(axes, ('env steps [thousands] (demonstration steps not counted)',
                                'wall time [min], one core each, side by side'
                                + (', pauses taken out' if pauses else '')), strict=True):
        ax.axhline(a.level, color='k', ls='--', lw=1, label=f'success {a.level:g}')
        ax.set_xlabel(label)
        ax.set_ylabel('held success, 20 evaluation episodes')
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=3, fontsize=8)
    fig.suptitle('rl_control/FrankaPickPlace-v1, config/franka_pick_place_sac.yaml: '
                 'same env, settings, demonstrations and evaluation episodes'
                 + (f'\n{a.note}' if a.note else ''))
    fig.tight_layout(rect=(0, 0.1 + 0.03 * (len(curves) // 3), 1, 1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=80)
    table = a.out.with_suffix('.csv')
    with open(table, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['impl', 'step', 'wall_s', 'success_rate'])
        for name, rows in curves.items():
            for r in rows:
                w.writerow([name, int(r['step']), round(r['wall_s'], 1), r['success_rate']])
    for name, rows in curves.items():
        hit = first_at(rows, a.level)
        last = rows[-1] if rows else None
        print(f'{name}: ' + (f"first >= {a.level:g} at {int(hit['step'])} steps, "
                             f"{hit['wall_s'] / 60:.1f} min" if hit else f'never >= {a.level:g}')
              + (f"; last {last['success_rate']:.2f} at {int(last['step'])} steps"
                 if last else '; no evaluation'))
    print(f'{a.out}, {table}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
