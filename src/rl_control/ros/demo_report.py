"""What `rl-control demo` reports: the episodes one by one, then the summary, plot and files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def episode_line(n: int, total: int, r: dict[str, Any], task: str = 'reach') -> str:
    """One finished episode: held or not, how close, how it settled, reflexes, rejections."""
    settle = r['settle_time_s']
    if task != 'reach':  # pick and place (envs/pick_metrics.py)
        steps = [k for k in ('grasped', 'lifted', 'placed', 'dropped') if r.get(k)]
        return (f"  episode {n}/{total}: {'held' if r['held'] else 'NOT held'}"
                f" (final {1000 * r['final_distance']:.1f} mm; {', '.join(steps) or 'no grasp'}"
                + (f'; placed and still from {settle:.2f} s' if settle is not None else '')
                + ')' + (f", REFLEX {r['reflex']}" if r.get('reflex') else '')
                + (f", {r['rejected']} rejected" if r.get('rejected') else ''))
    return (f"  episode {n}/{total}: {'held' if r['held'] else 'NOT held'}"
            f" (final {1000 * r['final_distance']:.1f} mm, "
            + (f'settled after {settle:.2f} s' if settle is not None else 'never settled')
            + f", last second path {1000 * r['last_second_path']:.1f} mm)"
            + (f", REFLEX {r['reflex']}" if r.get('reflex') else '')
            + (f", {r['rejected']} rejected" if r.get('rejected') else ''))


def summarize_episodes(results: list[dict[str, Any]], diag: dict[str, str],
                       task: str = 'reach') -> dict[str, Any]:
    """The demo's numbers: the task's success measures, reflexes, rejections, server figures."""
    if task == 'reach':
        from rl_control.envs.reach_metrics import summarize
    else:
        from rl_control.envs.pick_metrics import summarize

    def num(key: str) -> float:
        try:
            return float(diag.get(key, 'nan'))
        except ValueError:
            return float('nan')

    out = summarize(results)
    out.update({
        'task': task, 'success_rate': out['success'],
        'reflexes': sum(int(r.get('reflexes') or 0) for r in results),
        'episodes_with_reflex': sum(1 for r in results if r.get('reflex')),
        'reflex_names': sorted({r['reflex'] for r in results if r.get('reflex')}),
        'rejected': sum(int(r.get('rejected') or 0) for r in results),
        'reset_ignored': sum(int(r.get('reset_ignored') or 0) for r in results),
        'latency_ms_p50': num('latency_ms_p50_total'),
        'latency_ms_p99': num('latency_ms_p99_total'),
        'loop_rate_hz': num('rate_hz'),
        'late_messages': int(num('late_messages')) if diag.get('late_messages') else 0,
        'clamped': int(num('clamped')) if diag.get('clamped') else 0,
    })
    return out


def write_report(results: list[dict[str, Any]], diag: dict[str, str], out: Path,
                 period: float, title: str, say: Any, **extra: Any) -> dict[str, Any]:
    """The summary (printed with `say`), `demo_episodes.png` and `demo_results.json` in `out`."""
    task = extra.get('task', 'reach')
    if task == 'reach':
        from rl_control.envs.reach_metrics import report_lines
        from rl_control.envs.reach_plot import plot_episodes
    else:
        from rl_control.envs.pick_bench import plot as plot_episodes
        from rl_control.envs.pick_metrics import report_lines
    threshold = float(results[0].get('success_distance') or 0.02)
    summary = {**summarize_episodes(results, diag, task), **extra,
               'success_distance': threshold, 'plot': str(out / 'demo_episodes.png')}
    plot_episodes(results, threshold, period, out / 'demo_episodes.png', title=title)
    (out / 'demo_results.json').write_text(json.dumps(
        {'summary': summary, 'server_diagnostics': diag, 'episodes': results}, indent=1))
    say(f"demo: {len(results)} goals, {results[0]['samples'] * period:.0f} s episodes:")
    for line in report_lines(summary):
        say(f'  {line}')
    say(f"demo: {summary['reflexes']} reflexes"
        + (f" ({', '.join(summary['reflex_names'])})" if summary['reflex_names'] else '')
        + f", {summary['rejected']} rejected messages; state->command latency p50 "
        f"{summary['latency_ms_p50']:.2f} ms, p99 {summary['latency_ms_p99']:.2f} ms; plot "
        f"{summary['plot']}")
    return summary
