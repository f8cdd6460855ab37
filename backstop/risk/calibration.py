"""The two segments' return laws and books, calibrated on the real daily returns of prices.db.

- majors: BTC and ETH daily log returns pooled (2014-2020, median across exchanges), one t + jump law fitted on
  both, with the majors stress gaps;
- alts: LTC, the only alt in the data, fitted the same way, then scaled: today's listed alts (SOL-like) move more
  than 2016-2020 LTC did, so the body scale and the jump sizes are multiplied by ALT_VOL and the jump rate by
  ALT_JUMPS; the stress gaps are the alt figures (-40% to -90% in a day).
Engine parameters are the deployment defaults (backstop.core.config), so the sizing prices the same rules the chain
test checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backstop.core.config import LiquidationSpec, MarketSpec
from backstop.core.units import wad
from backstop.risk.data import load_series
from backstop.risk.margin import EngineParams
from backstop.risk.returns import STRESS_DAYS, ReturnModel, fit
from backstop.risk.sizing import Book, Segment

ALT_VOL = 1.5
ALT_JUMPS = 1.5
JUMP_K = 4.0


@dataclass(frozen=True)
class Calibration:
    majors: ReturnModel
    alts: ReturnModel
    days: dict[str, int]  # returns used per symbol
    first_day: dict[str, str]


def calibrate() -> Calibration:
    """Fit both segments' laws on prices.db (raises DataMissing when the file is absent)."""
    series = {s: load_series(s) for s in ("btc", "eth", "ltc")}
    majors_stress = tuple(g for _, g, _ in STRESS_DAYS)
    alts_stress = tuple(g for _, _, g in STRESS_DAYS)
    majors = fit(np.concatenate([series["btc"].log_returns, series["eth"].log_returns]), JUMP_K, majors_stress)
    alts = fit(series["ltc"].log_returns, JUMP_K).scaled(ALT_VOL, ALT_JUMPS, alts_stress)
    return Calibration(majors, alts, {s: int(x.log_returns.size) for s, x in series.items()},
                       {s: str(x.days[0]) for s, x in series.items()})


DEFAULT_BOOKS = {"majors": Book(open_interest=50_000_000.0), "alts": Book(open_interest=10_000_000.0)}


def segments(cal: Calibration, books: dict[str, Book] | None = None, decimals: int = 6) -> list[Segment]:
    """The majors and alts Segments with the deployment's default engine and market parameters."""
    books = books or DEFAULT_BOOKS
    params = EngineParams.from_spec(LiquidationSpec(), wad(MarketSpec("X", "majors").mm_ratio), decimals)
    return [Segment(name, model, books[name], params, decimals)
            for name, model in (("majors", cal.majors), ("alts", cal.alts))]
