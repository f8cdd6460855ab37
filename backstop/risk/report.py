"""reports/size.json and size.csv: what `make size` writes and what the deploy reads back (load_targets)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from backstop.risk.sizing import SizingResult

CSV_FIELDS = ("segment", "target_size", "floor", "es_999", "mean_loss", "ruin_probability", "ruin_ci_low",
              "ruin_ci_high", "ruin_hits", "paths", "seconds")


def segment_entry(result: SizingResult, calibration: dict, book: dict, decimals: int) -> dict:
    """One segment's JSON record; every amount in quote units (the token's smallest unit), as pools store them."""
    raw = asdict(result)
    return {
        "target_size": int(result.target_size),
        "floor": int(round(result.var_999)),
        "es_999": int(round(result.es_999)),
        "mean_loss": int(round(result.mean_loss)),
        "ruin_probability": result.ruin_probability,
        "ruin_ci_95": list(result.ruin_ci),
        "ruin_hits": result.ruin_hits,
        "paths": result.paths,
        "seconds": raw["seconds"],
        "quote_decimals": decimals,
        "book": book,
        "calibration": calibration,
    }


def write(out: Path, segments: dict[str, dict], meta: dict) -> tuple[Path, Path]:
    """Write size.json (meta + per segment records) and size.csv (one row per segment)."""
    out.mkdir(parents=True, exist_ok=True)
    path_json, path_csv = out / "size.json", out / "size.csv"
    path_json.write_text(json.dumps({"meta": meta, "segments": segments}, indent=2, sort_keys=True) + "\n")
    with path_csv.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for name, s in segments.items():
            writer.writerow([name, s["target_size"], s["floor"], s["es_999"], s["mean_loss"], s["ruin_probability"],
                             *s["ruin_ci_95"], s["ruin_hits"], s["paths"], round(s["seconds"], 3)])
    return path_json, path_csv


def load_targets(path: str | Path) -> dict[str, int]:
    """Segment label -> recommended pool target_size (quote units), from a size.json that `make size` wrote."""
    return {name: band[0] for name, band in load_bands(path).items()}


def load_bands(path: str | Path) -> dict[str, tuple[int, int, int | None]]:
    """Segment label -> (target_size, floor, quote decimals the amounts are in, None if unrecorded), from a size.json
    that `make size` wrote: the band a pool's `rebalance` keeps it in (docs/pools.md). The floor is the VaR 99.9%,
    never above the target."""
    data = json.loads(Path(path).read_text())
    bands = {}
    for name, entry in data["segments"].items():
        target = int(entry["target_size"])
        decimals = entry.get("quote_decimals")
        bands[name] = (target, min(int(entry.get("floor", 0)), target), None if decimals is None else int(decimals))
    return bands
