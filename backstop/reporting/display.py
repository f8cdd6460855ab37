"""Rich console helpers shared by the scripts: step narration, address and account tables.

Everything here only reads chain state; nothing sends a transaction.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any, Iterable, Mapping

from rich.console import Console
from rich.table import Table

from backstop.core.units import from_quote, from_wad

# Under make/CI stdout is not a terminal and rich would wrap tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

_step = 0


# ---------------------------------------------------------------- narration


def step(text: str) -> None:
    """Narrate the next step of a script: a numbered, bold one-liner."""
    global _step
    _step += 1
    console.print()
    console.print(f"[bold cyan]{_step:>2}.[/] [bold]{text}[/]")


def note(text: str) -> None:
    """A detail under the current step."""
    console.print(f"    [dim]{text}[/]")


def ok(text: str) -> None:
    console.print(f"    [green]✓[/] {text}")


# ---------------------------------------------------------------- number formatting


def fmt_quote(amount: int, decimals: int, places: int = 2) -> str:
    """Quote-token base units as a human amount, e.g. 103000000000 (6 dec) -> '103,000.00'."""
    return f"{from_quote(amount, decimals):,.{places}f}"


def fmt_wad(x: int, places: int = 4) -> str:
    """An 18-decimal fixed-point number (size, price) as a human number, zeros trimmed."""
    value = from_wad(x)
    text = f"{value:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_signed_quote(amount: int, decimals: int) -> str:
    text = fmt_quote(amount, decimals)
    if amount > 0:
        return f"[green]+{text}[/]"
    if amount < 0:
        return f"[red]{text}[/]"
    return text


def short(address: str) -> str:
    address = str(address)
    return f"{address[:6]}…{address[-4:]}"


# ---------------------------------------------------------------- tables


def addresses_table(system, title: str = "Deployed contracts") -> Table:
    """Every address of `System.addresses()` (so new contracts show up by themselves), then
    one row per market (id, segment, feed)."""
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    table.add_column("address")
    table.add_column("detail", style="dim")
    addresses = system.addresses()
    details = {"token": f"quote token, {system.decimals} decimals"}
    for key, value in addresses.items():
        if isinstance(value, str):
            table.add_row(key, value, details.get(key, ""))
    segment_names = {i: label for label, i in system.segments.items()}
    for label, market in addresses.get("markets", {}).items():
        table.add_row(
            f"{label} feed",
            str(market["feed"]),
            f"market {market['id']}, segment {market['segment']} ({segment_names.get(market['segment'], '?')})",
        )
    return table


def account_table(system, owners: Mapping[str, Any], segment: int, title: str | None = None) -> Table:
    """Collateral, equity, IM, MM, margin ratio and open positions of (owner, segment) rows.

    `owners` maps a display name to an account/address. Reads `health_of` once for all rows.
    """
    decimals = system.decimals
    names = list(owners)
    healths = system.lens.health_of([owners[n] for n in names], segment)
    segment_name = next((label for label, i in system.segments.items() if i == segment), str(segment))
    table = Table(title=title or f"Accounts in segment '{segment_name}'", title_justify="left")
    for column in ("account", "collateral", "equity", "unrealized", "IM", "MM", "equity / MM", "positions"):
        table.add_column(column, justify="left" if column in ("account", "positions") else "right")
    markets_in_segment = [m for m in system.markets.values() if m.segment == segment]
    for name, health in zip(names, healths):
        collateral, equity, im, mm = _health_fields(health)
        ratio = f"{Decimal(equity) / Decimal(mm):.2f}×" if mm else "—"
        if mm and equity < mm:
            ratio = f"[red]{ratio}[/]"
        table.add_row(
            name,
            fmt_quote(collateral, decimals),
            fmt_quote(equity, decimals),
            fmt_signed_quote(equity - collateral, decimals),
            fmt_quote(im, decimals),
            fmt_quote(mm, decimals),
            ratio,
            _positions_text(system, owners[name], markets_in_segment),
        )
    return table


def _health_fields(health) -> tuple[int, int, int, int]:
    """(collateral, equity, im, mm) of an AccountHealth struct, by field name when the ABI
    gives names (the struct may grow), else by position."""
    names = ("collateral", "equity", "im", "mm")
    if all(hasattr(health, n) for n in names):
        return tuple(int(getattr(health, n)) for n in names)
    return tuple(int(v) for v in list(health)[:4])


def _positions_text(system, owner, markets: Iterable) -> str:
    parts = []
    for market in markets:
        size, entry = (int(v) for v in system.vault.position(owner, market.id))
        if size == 0:
            continue
        side = "long" if size > 0 else "short"
        avg = abs(entry) * 10 ** (36 - system.decimals) // abs(size)
        parts.append(f"{market.label} {side} {fmt_wad(abs(size))} @ {fmt_wad(avg, 2)}")
    return ", ".join(parts) or "—"


def balances_table(token, holders: Mapping[str, Any], decimals: int, title: str = "Token balances",
                   before: Mapping[str, int] | None = None) -> Table:
    """Quote-token wallet balances; with `before`, also the change since then."""
    table = Table(title=title, title_justify="left")
    table.add_column("holder")
    if before is not None:
        table.add_column("before", justify="right")
    table.add_column("balance", justify="right")
    if before is not None:
        table.add_column("change", justify="right")
    for name, holder in holders.items():
        balance = int(token.balanceOf(holder))
        row = [name]
        if before is not None:
            row.append(fmt_quote(before[name], decimals))
        row.append(fmt_quote(balance, decimals))
        if before is not None:
            row.append(fmt_signed_quote(balance - before[name], decimals))
        table.add_row(*row)
    return table


def balances(token, holders: Mapping[str, Any]) -> dict[str, int]:
    """Wallet balances by display name (to pass as `before=` later)."""
    return {name: int(token.balanceOf(holder)) for name, holder in holders.items()}


def show(renderable) -> None:
    console.print(renderable)
