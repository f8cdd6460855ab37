"""Deployment configuration: segments, markets and their risk parameters (defaults: docs/design.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from eth_utils import is_address, to_checksum_address

from backstop.core.units import wad

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class ConfigError(ValueError):
    """A config that must not be deployed as it stands; raised before any transaction."""


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
    # notional, in units of 10,000 quote tokens, at which margin ratios double (0 = flat in size)
    size_knee: int = 0

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
            self.size_knee,
        )


@dataclass(frozen=True)
class LiquidationSpec:
    """LiquidationEngine parameters (defaults: docs/design.md); quote amounts in whole units."""

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
    """Timelock: every admin role moves to it on live networks (docs/design.md, invariant 10).

    On a live network `guardian` and `proposers` are required (SystemConfig.check): their
    local defaults (the deployer) would leave the deployer EOA in charge.
    """

    timelock_delay: int = 2 * 86400  # the Timelock's minimum delay, seconds
    proposers: tuple[str, ...] = ()  # may schedule and cancel; local default: the deployer
    executors: tuple[str, ...] = ()  # may execute a ready operation; empty: anyone
    guardian: str | None = None  # keeps only the pause roles; local default: the deployer
    hand_over: bool | None = None  # None: hand over on live networks, keep roles locally

    # The keys a config file's "governance" section may hold. `hand_over` is not one of
    # them: a file is for live networks, where the hand-over is not optional.
    FILE_KEYS = ("guardian", "proposers", "executors", "timelock_delay")

    def hands_over(self, live: bool) -> bool:
        return live if self.hand_over is None else self.hand_over

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "GovernanceSpec":
        """The config file's "governance" section; "_"-prefixed keys are comments."""
        unknown = sorted(k for k in raw if k not in cls.FILE_KEYS and not k.startswith("_"))
        if unknown:
            raise ConfigError(f"unknown governance keys {unknown}; expected {list(cls.FILE_KEYS)}")
        guardian = raw.get("guardian")
        return cls(
            timelock_delay=int(raw.get("timelock_delay", cls.timelock_delay)),
            proposers=tuple(_address(a, "governance.proposers") for a in raw.get("proposers") or ()),
            executors=tuple(_address(a, "governance.executors") for a in raw.get("executors") or ()),
            guardian=None if guardian is None else _address(guardian, "governance.guardian"),
        )

    def problems(self, live: bool) -> list[str]:
        """What makes this governance unfit to deploy (empty list: fine)."""
        if not live:
            return []
        found = []
        if not self.guardian:
            found.append("missing governance.guardian (the account that may pause)")
        if not self.proposers:
            found.append("missing governance.proposers (accounts that may schedule timelocked changes)")
        if self.hand_over is False:
            found.append("governance.hand_over=False: a live deploy always hands its roles to the timelock")
        for key, addresses in (("guardian", (self.guardian,) if self.guardian else ()),
                               ("proposers", self.proposers), ("executors", self.executors)):
            if ZERO_ADDRESS in addresses:
                found.append(f"governance.{key} holds the zero address")
        return found


def _address(value: Any, key: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"{key}: {value!r} is not an address")
    return to_checksum_address(value)


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
    pools: dict = field(default_factory=dict)  # overrides of backstop.client.pools.DEFAULT_POOL_PARAMS
    governance: GovernanceSpec = GovernanceSpec()
    vol_margin: bool = False  # deploy RiskParams: IM/MM follow each market's realized volatility
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> "SystemConfig":
        """Load a live-network config: {"quote_token", "treasury", "segments", "markets": [...],
        "governance": {"guardian", "proposers", "executors", "timelock_delay"}}."""
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
            governance=GovernanceSpec.from_dict(raw.get("governance") or {}),
            vol_margin=bool(raw.get("vol_margin", False)),
        )

    def problems(self, live: bool) -> list[str]:
        """Every reason this config must not be deployed (empty list: fine). A live network
        needs the real token, a feed per market and a governance that is not the deployer."""
        if not live:
            return []
        found = [] if self.quote_token else ["missing quote_token (mocks are local-only)"]
        found += [f"missing markets[{i}].feed ({m.label}: its Chainlink aggregator)"
                  for i, m in enumerate(self.markets) if not m.feed]
        return found + self.governance.problems(live)

    def check(self, live: bool) -> None:
        """Raise ConfigError naming every problem; deploy_system calls it before any
        transaction, so a refused deploy leaves nothing half-deployed on chain."""
        found = self.problems(live)
        if found:
            where = "live" if live else "local"
            raise ConfigError(f"{where} deploy refused:\n  - " + "\n  - ".join(found))


_DECIMAL_FIELDS = {"price", "min_price", "max_price", "im_ratio", "mm_ratio"}
