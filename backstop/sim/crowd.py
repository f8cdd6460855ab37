"""Margin-aware traders for the stress simulator: the behaviour through which a margin model can change bad debt.

A trader with a fixed leverage (the stress run's default crowd) meets every margin model with the same
positions, so margin could only move the liquidation point. Real traders size their positions to the margin
they are asked for, so here each trader:

- draws a market, a side and a **share of its IM limit** it uses (`RunSpec.im_share`, e.g. 0.2-0.9: at 10% IM,
  2x to 9x), and a collateral (lognormal around `trader_collateral` when `collateral_sigma` > 0: some whales);
- opens the notional n whose IM is that share of its free equity E = min(collateral, equity) under the IM in
  force *for that size*: n x im_ratio x (1 + n/K) = share x E (K the market's size knee, none if 0);
- every `rebalance_every` oracle updates, tops the position up to the same target when it has fallen more than
  BAND below it (profits, a lower margin, a partial liquidation it recovered from, or a full one: it re-enters
  with what it has left). It never cuts a position because margin rose: a higher margin binds only new risk
  (the vault refuses an increase below IM), and its MM decides when the keeper takes the position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ape.api import AccountAPI
from ape.exceptions import ContractLogicError

from backstop.client.actors import trade
from backstop.client.deploy import System
from backstop.core.units import WAD

BAND = 0.10  # top up only when the position is more than 10% below target: no fill per wobble
MIN_FILL = 100  # whole quote units: below the engine's minimum liquidation notional, not worth a fill
KNEE_TOKENS = 10_000  # MarketSpec.size_knee unit (quote tokens)


@dataclass
class Plan:
    """One trader's fixed choices."""

    account: AccountAPI
    label: str
    side: int  # +1 long, -1 short
    share: float  # of its IM limit it uses
    collateral: int  # whole quote units it deposits


def target_notional(free_equity: int, im_ratio: int, knee: int, decimals: int, share: float) -> int:
    """Notional (quote units) whose IM is `share` x `free_equity` under `im_ratio` (WAD) and a size knee of
    `knee` x 10,000 quote tokens (0: flat): the root of (im/K) n^2 + im n - share E = 0."""
    if free_equity <= 0 or im_ratio <= 0:
        return 0
    budget = share * free_equity
    ratio = im_ratio / WAD
    if knee == 0:
        return int(budget / ratio)
    k = knee * KNEE_TOKENS * 10**decimals
    return int(k / 2 * (math.sqrt(1 + 4 * budget / (ratio * k)) - 1))


@dataclass
class MarginAwareCrowd:
    """The margin-aware traders of one run, trading against `maker` at the oracle price."""

    system: System
    maker: AccountAPI
    plans: list[Plan]
    fills: int = 0
    refused: int = 0
    by_segment: dict[int, list[Plan]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for plan in self.plans:
            self.by_segment.setdefault(self.system.markets[plan.label].segment, []).append(plan)

    @classmethod
    def draw(cls, system: System, maker: AccountAPI, traders: list[AccountAPI], rng: np.random.Generator, *,
             collateral: int, sigma: float, im_share: tuple[float, float], long_share: float) -> MarginAwareCrowd:
        """Each trader's market, side, IM share and collateral (whole units), drawn from `rng` in a fixed order."""
        labels = list(system.markets)
        plans = []
        for account in traders:
            label = labels[int(rng.integers(len(labels)))]
            share = float(rng.uniform(*im_share))
            side = 1 if rng.random() < long_share else -1
            spread = math.exp(sigma * float(rng.standard_normal()) - sigma**2 / 2) if sigma > 0 else 1.0
            plans.append(Plan(account, label, side, share, int(collateral * spread)))
        return cls(system, maker, plans)

    def act(self) -> None:
        """Every trader tops its position up to target if it is more than BAND below it."""
        params = {label: self.system.lens.market(m.id) for label, m in self.system.markets.items()}
        decimals = self.system.decimals
        for segment, plans in self.by_segment.items():
            healths = self.system.lens.health_of([p.account.address for p in plans], segment)
            for plan, health in zip(plans, healths):
                collateral, equity, _im, _mm, notional = (int(x) for x in health)
                market = params[plan.label]
                target = target_notional(min(collateral, equity), int(market.im_ratio), int(market.size_knee),
                                         decimals, plan.share)
                if target > notional * (1 + BAND) and target - notional >= MIN_FILL * 10**decimals:
                    self.increase(plan, target - notional)

    def increase(self, plan: Plan, notional: int) -> None:
        market = self.system.markets[plan.label]
        mark = int(self.system.oracle.price(market.id))
        size = plan.side * (notional * 10 ** (36 - self.system.decimals) // mark)
        try:
            trade(self.system, plan.account, self.maker, market.id, size, mark)
            self.fills += 1
        except ContractLogicError:
            self.refused += 1  # e.g. the price moved the account below IM since its health was read


__all__ = ["BAND", "MarginAwareCrowd", "Plan", "target_notional"]
