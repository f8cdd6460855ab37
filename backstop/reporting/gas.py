"""Gas reports: {operation: gas_used} from receipts, written sorted to reports/gas.json,
printed as a table with targets and the deltas against the previous report.

Values are `receipt.gas_used`: the whole transaction, including the 21,000 base cost and
calldata (unlike `ape test --gas`, which leaves those out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from rich.table import Table

DEFAULT_PATH = Path("reports/gas.json")

# Upper bounds the hot paths must stay under (whole-transaction gas). A row above its
# target is printed red; `over_target` lists them.
TARGETS: dict[str, int] = {
    # with funding settled in the fill (issue 12: at most +5,000 each)
    "vault.fill_open": 155_000,
    "vault.fill_increase": 115_000,
    "vault.deposit": 60_000,
    "pool.deposit": 80_000,
    "pool.cover": 60_000,
    "engine.liquidate_partial": 120_000,
    "engine.liquidate_bankrupt": 180_000,
    # issue 13: rare paths, bounded so that they stay cheap enough for keepers to run unpaid
    "pools.rebalance": 95_000,  # two transfers out and the backstop's income booking; storage bound 72,264
    "engine.takeover": 400_000,
    # a poke that folds a round (every round); one that also writes new ratios happens at most once per
    # min_interval and touches the vault's config word, role and account on top (storage bound ~56,600)
    "risk.poke_hold": 60_000,
    "risk.poke": 75_000,
}


class GasReport:
    """Collects gas by operation name; one value per name (a re-record overwrites)."""

    def __init__(self) -> None:
        self.gas: dict[str, int] = {}

    def record(self, name: str, receipt_or_gas) -> int:
        gas = int(getattr(receipt_or_gas, "gas_used", receipt_or_gas))
        self.gas[name] = gas
        return gas

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.gas.items()))

    def write(self, path: str | Path = DEFAULT_PATH) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path


def load(path: str | Path = DEFAULT_PATH) -> dict[str, int] | None:
    """A previous report, or None if there is none (or it is unreadable)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else None


def over_target(gas: Mapping[str, int], targets: Mapping[str, int] = TARGETS) -> dict[str, tuple[int, int]]:
    """{operation: (gas, target)} for every operation above its target."""
    return {k: (gas[k], t) for k, t in targets.items() if k in gas and gas[k] > t}


def table(
    gas: Mapping[str, int],
    previous: Mapping[str, int] | None = None,
    targets: Mapping[str, int] = TARGETS,
    notes: Mapping[str, str] | None = None,
    title: str = "Gas per operation (receipt.gas_used)",
) -> Table:
    """Rows sorted by name: gas, target (red if over), delta vs `previous` (green if lower)."""
    notes = notes or {}
    result = Table(title=title, title_justify="left")
    result.add_column("operation", no_wrap=True)
    result.add_column("gas", justify="right")
    result.add_column("target", justify="right")
    if previous is not None:
        result.add_column("previous", justify="right")
        result.add_column("Δ", justify="right")
    if notes:
        result.add_column("note", style="dim")
    for name in sorted(gas):
        value = gas[name]
        target = targets.get(name)
        over = target is not None and value > target
        row = [
            f"[red]{name}[/]" if over else name,
            f"[red]{value:,}[/]" if over else f"{value:,}",
            "" if target is None else (f"[red]≤ {target:,}[/]" if over else f"[green]≤ {target:,}[/]"),
        ]
        if previous is not None:
            row += _delta_cells(value, previous.get(name))
        if notes:
            row.append(notes.get(name, ""))
        result.add_row(*row)
    if previous is not None:
        for name in sorted(set(previous) - set(gas)):
            row = [f"[dim]{name}[/]", "[dim]gone[/]", "", f"{previous[name]:,}", ""]
            if notes:
                row.append("")
            result.add_row(*row)
    return result


def _delta_cells(value: int, before: int | None) -> list[str]:
    if before is None:
        return ["—", "[cyan]new[/]"]
    delta = value - before
    if delta == 0:
        return [f"{before:,}", "0"]
    pct = f" ({delta / before:+.1%})" if before else ""
    colour = "red" if delta > 0 else "green"
    return [f"{before:,}", f"[{colour}]{delta:+,}{pct}[/]"]
