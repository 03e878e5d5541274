"""A markdown table of reach-and-hold figures from `rl-control bench-reach --out` JSON files.

    .venv/bin/python bench/reach_table.py bench/results/reach_hold_before/*.json

One row per file (its name is the row label), the figures of `envs/reach_metrics.py`: held at
1/2/5 cm, reached at 2 cm, time to settle, final distance, last-second distance and path, path
ratio, the fastest joint at the end and reflexes. `--plot DIR` also draws each file's episodes
(distance and joint speed over time) as DIR/<name>.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (
    ('held 2 cm', 'held_2cm', '{:.2f}'), ('held 5 cm', 'held_5cm', '{:.2f}'),
    ('held 1 cm', 'held_1cm', '{:.2f}'), ('reached 2 cm', 'reached_2cm', '{:.2f}'),
    ('settle median [s]', 'settle_time_s_median', '{:.2f}'),
    ('final median / max [mm]', ('final_distance_median', 'final_distance_max'), 'mm'),
    ('last s mean dist. median [mm]', 'last_second_distance_mean_median', 'mm1'),
    ('last s path median [mm]', 'last_second_path_median', 'mm1'),
    ('path ratio median', 'path_ratio_median', '{:.2f}'),
    ('end joint speed median / max [rad/s]', ('final_joint_speed_median',
                                              'final_joint_speed_max'), '{:.3f}'),
    ('reflexes', 'reflexes', '{}'),
)


def cell(summary: dict, key: str | tuple[str, ...], fmt: str) -> str:
    """One formatted figure ('never' where a time is None, '-' where it is missing)."""
    if isinstance(key, tuple):
        return ' / '.join(cell(summary, k, fmt) for k in key)
    if key not in summary:
        return '-'
    v = summary[key]
    if v is None:
        return 'never' if 'settle' in key else '-'
    if fmt.startswith('mm'):
        return f'{1000 * v:.1f}'
    return fmt.format(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('files', nargs='+', type=Path)
    ap.add_argument('--plot', type=Path, default=None, help='also plot each file here')
    a = ap.parse_args()
    print('| run | ' + ' | '.join(c[0] for c in COLUMNS) + ' |')
    print('|---' * (len(COLUMNS) + 1) + '|')
    for f in a.files:
        data = json.loads(f.read_text())
        s = data.get('summary', data)
        print(f'| {f.stem} | ' + ' | '.join(cell(s, k, fmt) for _, k, fmt in COLUMNS) + ' |')
        if a.plot and data.get('episodes'):
            from rl_control.envs.reach_plot import plot_episodes

            a.plot.mkdir(parents=True, exist_ok=True)
            plot_episodes(data['episodes'], float(s.get('success_distance') or 0.02), 0.04,
                          a.plot / f'{f.stem}.png', title=f.stem)


if __name__ == '__main__':
    main()
