"""The outputs of `rl-control sweep` a person looks at: sweep.png and the printed table."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_control.train.space import Param

if TYPE_CHECKING:
    from rl_control.train.sweep import SweepResult


def plot_sweep(rows: list[dict[str, Any]], params: list[Param], mode: str, png: Path,
               best: dict[str, Any] | None, label: str) -> Path:
    """Metric per trial, then metric against each searched key (errors marked, not plotted)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = 1 + len(params)
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.6 * nrows), dpi=110,
                             squeeze=False)
    styles = {'solved': ('#2ca02c', 'o'), 'done': ('#1f6fb4', 'o'),
              'unsolved': ('#ff7f0e', 's'), 'stopped': ('#7f7f7f', 'v')}
    ok = [r for r in rows if r['metric'] is not None and r['status'] != 'error']
    errors = [r for r in rows if r['status'] == 'error']
    ax = axes[0][0]
    for status, (color, marker) in styles.items():
        pts = [r for r in ok if r['status'] == status]
        if pts:
            ax.scatter([r['trial'] for r in pts], [r['metric'] for r in pts], color=color,
                       marker=marker, label=status, zorder=3)
    if errors:
        y = min((r['metric'] for r in ok), default=0.0)
        ax.scatter([r['trial'] for r in errors], [y] * len(errors), color='#d62728',
                   marker='x', label='error', zorder=3)
    if best is not None:
        ax.scatter([best['trial']], [best['metric']], s=160, facecolors='none',
                   edgecolors='k', label='best', zorder=4)
    ax.set_xlabel('trial')
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    short, _, detail = label.partition(' (')
    ax.set_ylabel(short)
    ax.set_title(f'{len(rows)} trials ({"lower" if mode == "min" else "higher"} is better)\n'
                 f'({detail}', fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    for k, p in enumerate(params, start=1):
        ax = axes[k // cols][k % cols]
        if p.type == 'choice':
            labels = [json.dumps(v) for v in p.values]
            xs = [labels.index(json.dumps(r[p.key])) for r in ok]
            ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            xs = [r[p.key] for r in ok]
            if p.type == 'loguniform' or p.log:
                ax.set_xscale('log')
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        colors = [styles.get(r['status'], ('#1f6fb4', 'o'))[0] for r in ok]
        ax.scatter(xs, [r['metric'] for r in ok], c=colors, zorder=3)
        if best is not None:
            bx = (labels.index(json.dumps(best[p.key])) if p.type == 'choice'
                  else best[p.key])
            ax.scatter([bx], [best['metric']], s=160, facecolors='none', edgecolors='k',
                       zorder=4)
        ax.set_xlabel(p.key, fontsize=9)
        ax.set_ylabel(short)
        ax.grid(True, alpha=0.3)
    for k in range(n, nrows * cols):
        axes[k // cols][k % cols].axis('off')
    axes[0][0].grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def format_table(result: SweepResult) -> str:
    """The results table as aligned text (what the CLI prints)."""
    keys = [p.key for p in result.params]
    head = ['trial', 'status', 'metric', *keys]
    lines = [head]
    for r in result.rows:
        metric = '' if r['metric'] is None else f'{r["metric"]:.4g}'
        cells = [str(r['trial']), r['status'], metric]
        cells += [_short(r[k]) for k in keys]
        if r['message']:
            cells.append(r['message'][:120])
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(head))]
    return '\n'.join('  '.join(c.ljust(widths[i]) if i < len(widths) else c
                               for i, c in enumerate(line)).rstrip() for line in lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def cell(value: Any) -> Any:
    """A results.csv cell: '' for None, 6 significant digits, JSON for containers."""
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def metric_label(spec: Any) -> str:
    """What the sweep's metric is, for the plot and best_config.yaml."""
    if spec.target is None:
        return f'final eval return (mean of {len(spec.seeds)} seed(s))'
    return (f'time to solve, s (return >= {spec.target:g} confirmed; mean of '
            f'{len(spec.seeds)} seed(s); unsolved = {spec.budget_s:g} s)')
