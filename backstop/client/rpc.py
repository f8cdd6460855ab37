"""JSON-RPC over HTTP with batches: Anvil (and any node) answers a batch of eth_calls in one round trip, which
is what lets a keeper scan 1,000 accounts or a fuzzer check every invariant within a block."""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import requests



class Rpc:
    """Minimal JSON-RPC over HTTP with batches (Anvil answers a batch in one round trip)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        self._ids = itertools.count(1)
        self.calls = 0

    @classmethod
    def from_ape(cls) -> "Rpc":
        from ape import chain

        provider = chain.provider
        uri = getattr(provider, "uri", None) or provider.web3.provider.endpoint_uri
        return cls(uri)

    def request(self, method: str, params: list) -> Any:
        self.calls += 1
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        reply = self.session.post(self.uri, json=body).json()
        if "error" in reply:
            raise RpcError(reply["error"])
        return reply["result"]

    def batch(self, requests_: Sequence[tuple[str, list]]) -> list[Any]:
        """Results in order; an error entry becomes an RpcError instance (not raised)."""
        if not requests_:
            return []
        self.calls += 1
        first = next(self._ids)
        body = [{"jsonrpc": "2.0", "id": first + k, "method": m, "params": p} for k, (m, p) in enumerate(requests_)]
        for _ in range(len(requests_) - 1):
            next(self._ids)
        replies = self.session.post(self.uri, json=body).json()
        by_id = {r["id"]: r for r in replies}
        out = []
        for k in range(len(requests_)):
            r = by_id[first + k]
            out.append(RpcError(r["error"]) if "error" in r else r["result"])
        return out


class RpcError(Exception):
    pass
