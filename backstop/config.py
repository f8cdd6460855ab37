"""Deployment configuration: segments, markets and their risk parameters (DESIGN.md defaults)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from backstop.units import wad


@dataclass(frozen=True)
class MarketSpec:
    label: str
    segment: str
    price: Decimal = Decimal("1000")  # initial mock price on local chains
    feed: str | None = None  # Chainlink aggregator address on live networks
    feed_decimals: int = 8
    heartbeat: int = 3600
    min_price: Decimal = Decimal("0.0001")
    max_price: Decimal = Decimal("10000000")
    im_ratio: Decimal = Decimal("0.10")
    mm_ratio: Decimal = Decimal("0.05")
    taker_fee_bps: int = 5
    maker_fee_bps: int = 0
    price_band_bps: int = 1000
    max_open_interest: int = 10_000_000  # whole base units

    def params(self, segment_id: int) -> tuple:
        """MarketParams as the vault's struct takes it."""
        return (
            segment_id,
            wad(self.im_ratio),
            wad(self.mm_ratio),
            self.taker_fee_bps,
            self.maker_fee_bps,
            self.price_band_bps,
            self.max_open_interest,
        )


@dataclass(frozen=True)
class LiquidationSpec:
    """LiquidationEngine parameters (DESIGN.md defaults); quote amounts in whole units."""

    close_factor: Decimal = Decimal("0.25")
    full_close_tier: Decimal = Decimal("0.5")
    auction_start_discount: Decimal = Decimal("0")
    auction_max_discount: Decimal = Decimal("0.05")
    liquidation_penalty: Decimal = Decimal("0.01")
    auction_duration: int = 600
    min_liquidation_notional: Decimal = Decimal("100")
    keeper_fee_floor: Decimal = Decimal("2")

    def params(self, quote_decimals: int) -> tuple:
        """LiquidationParams as the engine's struct takes it."""
        unit = 10**quote_decimals
        return (
            wad(self.close_factor),
            wad(self.full_close_tier),
            wad(self.auction_start_discount),
            wad(self.auction_max_discount),
            wad(self.liquidation_penalty),
            self.auction_duration,
            int(self.min_liquidation_notional * unit),
            int(self.keeper_fee_floor * unit),
        )


@dataclass(frozen=True)
class GovernanceSpec:
    """Timelock: every admin role moves to it on live networks (DESIGN.md invariant 10)."""

    timelock_delay: int = 2 * 86400
    proposers: tuple[str, ...] = ()  # default: the deployer
    guardian: str | None = None  # keeps only the pause roles; default: the deployer
    hand_over: bool | None = None  # None: hand over on live networks, keep roles locally


@dataclass(frozen=True)
class SystemConfig:
    segments: tuple[str, ...] = ("majors", "alts")
    markets: tuple[MarketSpec, ...] = (
        MarketSpec("ETH-PERP", "majors", price=Decimal("3000")),
        MarketSpec("BTC-PERP", "majors", price=Decimal("60000")),
        MarketSpec("SOL-PERP", "alts", price=Decimal("150")),
    )
    quote_decimals: int = 6
    quote_token: str | None = None  # real token address on live networks
    treasury: str | None = None  # defaults to the deployer
    liquidation: LiquidationSpec = LiquidationSpec()
    pools: dict = field(default_factory=dict)  # overrides of backstop.pools.DEFAULT_POOL_PARAMS
    governance: GovernanceSpec = GovernanceSpec()
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> "SystemConfig":
        """Load a live-network config: {"quote_token", "treasury", "segments", "markets": [...]}."""
        raw = json.loads(Path(path).read_text())
        markets = tuple(
            MarketSpec(**{k: (Decimal(str(v)) if k in _DECIMAL_FIELDS else v) for k, v in m.items()})
            for m in raw["markets"]
        )
        return cls(
            segments=tuple(raw["segments"]),
            markets=markets,
            quote_decimals=raw.get("quote_decimals", 6),
            quote_token=raw.get("quote_token"),
            treasury=raw.get("treasury"),
        )


_DECIMAL_FIELDS = {"price", "min_price", "max_price", "im_ratio", "mm_ratio"}
