"""Run logging: `progress.csv`, TensorBoard scalars and an end-of-run learning-curve PNG.

progress.csv is rewritten whole (atomically) at each evaluation rather than appended: the
columns are only known once the agent has reported its losses, a resumed run must drop rows
past its checkpoint, and eval rows are few (hundreds), so rewriting is cheap and never leaves
a half-written line for a plotting script to trip on. It is replaced without fsync: readers
always see a whole file, and what must survive a crash is the checkpoint, which is fsynced.
TensorBoard events are flushed every 10 s and at the end, not at every row: a forced flush
waits for the writer thread and the disk, 5-15 ms of wall time per evaluation here, on the
critical path of time-to-threshold runs. For the same reason the writer itself (importing
TensorBoard, its protobufs and its thread) is only made once the run is 10 s old, or at its end:
the scalars logged before are kept and written then, in order, so a TensorBoard reader sees
them as late as the 10 s flush would have shown them anyway.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
import time
from typing import Any

FLUSH_SECS = 10  # TensorBoard: events reach the disk at most this long after being logged
BASE_COLUMNS = ('step', 'wall_s', 'episodes', 'updates', 'steps_per_s', 'train_mean_return',
                'eval_mean_return', 'eval_std_return', 'success_rate')


class RunLogger:
    """Collects one row per evaluation; mirrors every scalar to TensorBoard when enabled."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / 'progress.csv'
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and self.csv_path.is_file():
            self.rows = [r for r in read_progress(self.csv_path) if r['step'] <= resume_step]
        self._writer = None
        self._tensorboard, self._resume_step = tensorboard, resume_step
        self._pending: list[tuple[str, float, int]] = []  # scalars until the writer exists
        self._t0 = time.monotonic()

    def _make_writer(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when used
        self._writer = SummaryWriter(str(self.run_dir / 'tb'), purge_step=self._resume_step,
                                     flush_secs=FLUSH_SECS)
        for tag, value, step in self._pending:
            self._writer.add_scalar(tag, value, step)
        self._pending = []

    def scalars(self, step: int, values: dict[str, float], prefix: str = '') -> None:
        """TensorBoard only (e.g. losses between evaluations)."""
        if not self._tensorboard:
            return
        add = self._pending.append if self._writer is None else (
            lambda item: self._writer.add_scalar(*item))
        for key, value in values.items():
            if value is not None and _finite(value):
                add((prefix + key, float(value), step))
        if self._writer is None and time.monotonic() - self._t0 >= FLUSH_SECS:
            self._make_writer()

    def row(self, values: dict[str, Any]) -> None:
        """Add one progress row (must contain `step`), rewrite the CSV, mirror to TensorBoard."""
        self.rows.append(dict(values))
        self._write_csv()
        step = int(values['step'])
        tb = {('eval/' if k.startswith('eval_') or k == 'success_rate' else 'train/') + k: v
              for k, v in values.items() if k not in ('step',) and isinstance(v, (int, float))}
        self.scalars(step, tb)

    def _write_csv(self) -> None:
        extra = sorted({k for r in self.rows for k in r} - set(BASE_COLUMNS))
        columns = list(BASE_COLUMNS) + extra
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(r.get(k)) for k in columns})
        tmp = self.csv_path.with_name(f'.{self.csv_path.name}.tmp')
        tmp.write_text(out.getvalue())
        os.replace(tmp, self.csv_path)  # atomic for readers; no fsync (module docstring)

    def close(self, title: str | None = None, target: float | None = None) -> Path | None:
        """Flush TensorBoard and draw the learning curve; the PNG path (None if no rows)."""
        if self._tensorboard and self._writer is None:
            self._make_writer()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._tensorboard = False  # closed: a second close writes nothing
        if not self.rows:
            return None
        return plot_learning_curve(self.csv_path, self.run_dir / 'learning_curve.png', title,
                                   target)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any) -> Any:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.6g}'
    return value


def read_progress(path: str | Path) -> list[dict[str, Any]]:
    """progress.csv as a list of dicts with numbers parsed (empty cells -> None)."""
    rows = []
    with open(path, newline='') as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if v in ('', None):
                    row[k] = None
                else:
                    try:
                        num = float(v)
                        row[k] = int(num) if k in ('step', 'episodes', 'updates') else num
                    except ValueError:
                        row[k] = v
            rows.append(row)
    return rows


def plot_learning_curve(csv_path: str | Path, png_path: str | Path,
                        title: str | None = None, target: float | None = None) -> Path:
    """Plot deterministic eval return (mean ± std band) vs env steps.

    Adds the recent training-episode return, the best point, the wall time in the title, and
    the success rate on a second axis when the env reports it.
    """
    # The Figure API with the Agg canvas, not pyplot (no backend selection, no global figure
    # manager), and fixed margins instead of tight_layout, which renders every text twice to
    # measure it at the end of every training run.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import matplotlib.ticker
    import numpy as np

    rows = [r for r in read_progress(csv_path) if r.get('eval_mean_return') is not None]
    png_path = Path(png_path)
    fig = Figure(figsize=(8, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    color = '#1f6fb4'
    if rows:
        steps = np.array([r['step'] for r in rows], float)
        mean = np.array([r['eval_mean_return'] for r in rows], float)
        std = np.array([r.get('eval_std_return') or 0.0 for r in rows], float)
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.18, linewidth=0,
                        label='± 1 std')
        ax.plot(steps, mean, color=color, linewidth=2.0, marker='o', markersize=3,
                label='eval return (deterministic)')
        train = [(r['step'], r['train_mean_return']) for r in rows
                 if r.get('train_mean_return') is not None]
        if train:
            ts, tr = zip(*train, strict=True)
            ax.plot(ts, tr, color='#7f7f7f', linewidth=1.2, linestyle='--',
                    label='train return (recent episodes)')
        if target is not None:
            ax.axhline(target, color='#d62728', linewidth=1.0, linestyle=':',
                       label=f'target {target:g}')
        best = int(np.argmax(mean))
        ax.annotate(f'best {mean[best]:.1f}', (steps[best], mean[best]),
                    textcoords='offset points', xytext=(0, 8), ha='center', fontsize=8,
                    color=color)
        last = rows[-1]
        wall = last.get('wall_s')
        subtitle = f'{int(steps[-1]):,} steps' + (f' in {wall:.1f} s' if wall else '')
        ax.set_title((title + '\n' if title else '') + subtitle, fontsize=11)
        if any(r.get('success_rate') is not None for r in rows):
            ax2 = ax.twinx()
            sr = [(r['step'], r['success_rate']) for r in rows
                  if r.get('success_rate') is not None]
            ss, sv = zip(*sr, strict=True)
            ax2.plot(ss, sv, color='#2ca02c', linewidth=1.5, label='success rate')
            ax2.set_ylim(-0.05, 1.05)
            ax2.set_ylabel('success rate', color='#2ca02c')
            ax2.tick_params(axis='y', colors='#2ca02c')
            ax2.spines['top'].set_visible(False)
            handles, labels = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(handles + h2, labels + l2, loc='best', fontsize=8, frameon=False)
        else:
            ax.legend(loc='best', fontsize=8, frameon=False)
    ax.margins(y=0.1)
    ax.set_xlabel('environment steps')
    ax.set_ylabel('episode return')
    ax.grid(True, alpha=0.3)
    ax.spines['top'].set_visible(False)
    ax.spines['right'].set_visible(False)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f'{x:,.0f}'))
    fig.subplots_adjust(left=0.11, right=0.9 if rows and ax.figure.axes[1:] else 0.97,
                        bottom=0.12, top=0.86)
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    from rl_control.bundle.atomic import atomic_write_bytes
    atomic_write_bytes(png_path, buf.getvalue())
    return png_path
