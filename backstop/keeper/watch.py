"""What a keeper watches: the accounts that can become liquidatable, read in JSON-RPC batches.

A keeper learns accounts from the vault's Deposit and Fill events and the engine's Liquidated events (a
liquidator takes positions over), and scans them with `VaultLens.health_of`, at most `LENS_BATCH` owners
per call and every call of a scan in ONE JSON-RPC batch: 1,000 accounts are 8 eth_calls in one round trip.
A flat account whose collateral is not negative cannot become liquidatable until it trades again, so it is
moved to a dormant set and woken by its next Fill (or Liquidated) event: the hot scan stays the size of
the open book, not of everyone who ever deposited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from eth_abi import decode, encode
from eth_utils import to_checksum_address

from backstop.client.deploy import System
from backstop.client.rpc import Rpc, RpcError
from backstop.core.abi import address_of, selector, topic, word_uint
from backstop.keeper.liquidator import AccountStatus

LENS_BATCH = 128  # VaultLens.MAX_BATCH: owners per health_of call

_HEALTH_OF = selector("health_of(address[],uint256)")
_HEALTH_TYPE = "(int256,int256,uint256,uint256,uint256)[]"
_POSITION = selector("position(address,uint256)")
_DEPOSIT = topic("Deposit(address,uint256,uint256)")
_FILL = topic("Fill(bytes32,address,address,uint256,int256,uint256,uint256,uint256,int256,int256,int256)")
_LIQUIDATED = topic("Liquidated(address,address,uint256,uint256,uint256,uint256,uint256,uint256,uint256,bool)")


def _topic_address(word: str) -> str:
    return to_checksum_address("0x" + word[-40:])


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def health_calls(system: System, owners: Sequence[str], segment: int) -> list[tuple[str, list]]:
    """The eth_calls of `lens.health_of` covering `owners`, LENS_BATCH per call."""
    lens = address_of(system.lens)
    calls = []
    for start in range(0, len(owners), LENS_BATCH):
        data = _HEALTH_OF + encode(["address[]", "uint256"], [list(owners[start:start + LENS_BATCH]), segment])
        calls.append(("eth_call", [{"to": lens, "data": _hex(data)}, "latest"]))
    return calls


def decode_health(owners: Sequence[str], segment: int, replies: Sequence[Any]) -> list[AccountStatus]:
    """AccountStatus rows of `owners` from the replies of `health_calls` (same order)."""
    rows: list[AccountStatus] = []
    for k, reply in enumerate(replies):
        if isinstance(reply, RpcError):
            raise reply  # health_of never reverts: an error here is the node's, not an account's
        chunk = owners[k * LENS_BATCH:(k + 1) * LENS_BATCH]
        (healths,) = decode([_HEALTH_TYPE], bytes.fromhex(reply[2:]))
        rows += [AccountStatus(o, segment, *(int(x) for x in h)) for o, h in zip(chunk, healths)]
    return rows


def positions(system: System, rpc: Rpc, pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """{(owner, market): signed base size} of every pair, in one batch."""
    vault = address_of(system.vault)
    calls = [("eth_call", [{"to": vault, "data": _hex(_POSITION + encode(["address", "uint256"], [o, m]))},
                           "latest"]) for o, m in pairs]
    out = {}
    for pair, reply in zip(pairs, rpc.batch(calls)):
        if isinstance(reply, RpcError):
            raise reply
        size, _entry = decode(["int256", "uint256"], bytes.fromhex(reply[2:]))
        out[pair] = int(size)
    return out


@dataclass
class Watchlist:
    """Accounts per segment: `active` are scanned every block, `dormant` (flat, collateral >= 0) wait for
    their next trade. `next_block` is the first block whose events are not learnt yet."""

    active: dict[int, set[str]] = field(default_factory=dict)
    dormant: dict[int, set[str]] = field(default_factory=dict)
    next_block: int = 0

    @property
    def watched(self) -> int:
        return sum(map(len, self.active.values())) + sum(map(len, self.dormant.values()))

    def add(self, segment: int, owners: Iterable[Any]) -> None:
        """Watch `owners` in `segment` (actively: they may hold positions)."""
        found = {address_of(o) for o in owners}
        self.active.setdefault(segment, set()).update(found)
        self.dormant.get(segment, set()).difference_update(found)

    def learn(self, system: System, rpc: Rpc, to_block: int) -> int:
        """Learn the accounts of blocks [next_block, to_block] from their events; the number of events read."""
        if to_block < self.next_block:
            return 0
        market_segment = {m.id: m.segment for m in system.markets.values()}
        span = {"fromBlock": hex(self.next_block), "toBlock": hex(to_block)}
        deposits, fills, liquidations = rpc.batch([
            ("eth_getLogs", [{**span, "address": address_of(system.vault), "topics": [_hex(_DEPOSIT)]}]),
            ("eth_getLogs", [{**span, "address": address_of(system.vault), "topics": [_hex(_FILL)]}]),
            ("eth_getLogs", [{**span, "address": address_of(system.engine), "topics": [_hex(_LIQUIDATED)]}]),
        ])
        for reply in (deposits, fills, liquidations):
            if isinstance(reply, RpcError):
                raise reply
        for log in deposits:
            self.add(word_uint(bytes.fromhex(log["topics"][2][2:])), [_topic_address(log["topics"][1])])
        for log in fills:
            market = word_uint(bytes.fromhex(log["data"][2:66]))
            self.add(market_segment.get(market, -1), [_topic_address(log["topics"][2]),
                                                     _topic_address(log["topics"][3])])
        for log in liquidations:
            market = word_uint(bytes.fromhex(log["topics"][3][2:]))
            self.add(market_segment.get(market, -1), [_topic_address(log["topics"][2])])
        self.active.pop(-1, None)  # a market this deployment file does not list
        self.next_block = to_block + 1
        return len(deposits) + len(fills) + len(liquidations)

    def scan(self, system: System, rpc: Rpc) -> dict[int, list[AccountStatus]]:
        """Health of every active account, all segments in one JSON-RPC batch; flat accounts that owe
        nothing are pruned to `dormant` on the way."""
        plan = [(segment, sorted(owners)) for segment, owners in self.active.items() if owners]
        calls: list[tuple[str, list]] = []
        spans = []
        for segment, owners in plan:
            chunk = health_calls(system, owners, segment)
            spans.append((segment, owners, len(calls), len(calls) + len(chunk)))
            calls += chunk
        replies = rpc.batch(calls)
        out: dict[int, list[AccountStatus]] = {}
        for segment, owners, start, stop in spans:
            rows = decode_health(owners, segment, replies[start:stop])
            self._prune(segment, rows)
            out[segment] = rows
        return out

    def _prune(self, segment: int, rows: Sequence[AccountStatus]) -> None:
        flat = {s.owner for s in rows if s.mm == 0 and s.notional == 0 and s.collateral >= 0}
        self.active[segment] -= flat
        self.dormant.setdefault(segment, set()).update(flat)
