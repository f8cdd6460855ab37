"""Fixed-point helpers: sizes and prices are 18-decimal, quote amounts use the token's decimals."""

from decimal import Decimal

WAD = 10**18
BPS = 10_000


def wad(x: float | int | str | Decimal) -> int:
    """An 18-decimal fixed-point integer from a human number (exact for str/Decimal)."""
    return int(Decimal(str(x)) * WAD)


def quote(x: float | int | str | Decimal, decimals: int) -> int:
    """A quote-token amount in base units from a human number."""
    return int(Decimal(str(x)) * 10**decimals)


def from_quote(amount: int, decimals: int) -> Decimal:
    return Decimal(amount) / Decimal(10**decimals)


def from_wad(x: int) -> Decimal:
    return Decimal(x) / Decimal(WAD)


def notional(size: int, price: int, decimals: int) -> int:
    """Quote units of |size| at price, rounded down (the vault's trade cost rule)."""
    return abs(size) * price // 10 ** (36 - decimals)
