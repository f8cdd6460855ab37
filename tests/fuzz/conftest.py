"""Fixtures of the stateful fuzzer: the raw JSON-RPC fast path over the session deployment.

The fuzzer talks to Anvil directly (see backstop/model.py and tests/fuzz/fastpath.py):
transactions go out as `eth_sendTransaction` from Anvil's unlocked test accounts with a fixed
gas limit (no ape receipt decoding, no gas estimation, no local signing), orders are signed
with coincurve, and receipts + every invariant read come back in one JSON-RPC batch per step.
"""

import pytest

from backstop.sim.model import Rpc


@pytest.fixture(scope="session")
def rpc(system):
    return Rpc.from_ape()
