"""Raw JSON-RPC transactions and coincurve-signed EIP-712 orders for the fuzzer.

Everything ape does per transaction (gas estimation, local signing, receipt decoding, the
post-transaction trace) is skipped: a transaction is one `eth_sendTransaction` from an Anvil
unlocked account with a fixed gas limit; a revert is simply a mined receipt with status 0.
"""

from __future__ import annotations

from coincurve import PrivateKey
from eth_abi import encode
from eth_utils import keccak

from backstop.core.abi import address_of, selector
from backstop.core.orders import EIP712_NAME, EIP712_VERSION
from backstop.sim.model import Rpc, RpcError, Tx

GAS = hex(6_000_000)
ORDER_TYPE = "(address,uint256,int256,uint256,uint256,uint256,bool)"
ORDER_TYPEHASH = keccak(
    text="Order(address maker,uint256 market,int256 size,uint256 price,uint256 nonce,uint256 expiry,bool reduce_only)"
)
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

_SELECTORS: dict[str, bytes] = {}


def calldata(signature: str, *args) -> str:
    sel = _SELECTORS.get(signature)
    if sel is None:
        sel = _SELECTORS[signature] = selector(signature)
    types = signature[signature.index("(") + 1: -1]
    types_list = _split_types(types)
    return "0x" + (sel + encode(types_list, list(args))).hex()


def _split_types(types: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        out.append(cur)
    return out


class Sender:
    def __init__(self, rpc: Rpc):
        self.rpc = rpc
        self.sent = 0
        self.sync = True  # Anvil >= 1.4: eth_sendTransactionSync returns the mined receipt

    def send(self, kind: str, sender, to, signature: str, *args, **meta) -> Tx:
        frm = address_of(sender)
        tx = {"from": frm, "to": address_of(to), "data": calldata(signature, *args), "gas": GAS}
        self.sent += 1
        if self.sync:
            try:
                receipt = self.rpc.request("eth_sendTransactionSync", [tx])
                return Tx(kind=kind, sender=frm, hash=receipt["transactionHash"], meta=meta, receipt=receipt)
            except RpcError as exc:
                if "not supported" not in str(exc) and "does not exist" not in str(exc) and "-32601" not in str(exc):
                    raise
                self.sync = False
        h = self.rpc.request("eth_sendTransaction", [tx])
        while True:  # older Anvil: poll for the receipt (automine is asynchronous)
            receipt = self.rpc.request("eth_getTransactionReceipt", [h])
            if receipt is not None:
                return Tx(kind=kind, sender=frm, hash=h, meta=meta, receipt=receipt)


    def send_nowait(self, kind: str, sender, to, signature: str, *args, nonce: int | None = None, **meta) -> Tx:
        """eth_sendTransaction without waiting for a receipt (automine off: the transaction
        waits in the pool for evm_mine); the Tracker fetches the receipt with the step."""
        frm = address_of(sender)
        tx = {"from": frm, "to": address_of(to), "data": calldata(signature, *args), "gas": GAS}
        if nonce is not None:
            tx["nonce"] = hex(nonce)
        self.sent += 1
        h = self.rpc.request("eth_sendTransaction", [tx])
        return Tx(kind=kind, sender=frm, hash=h, meta=meta)


class OrderSigner:
    """EIP-712 orders of MarginVault signed with coincurve (r || s || v)."""

    def __init__(self, chain_id: int, vault: str, keys: dict[str, bytes]):
        self.domain = keccak(encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=EIP712_NAME), keccak(text=EIP712_VERSION), chain_id, address_of(vault)],
        ))
        self.keys = {address_of(a): PrivateKey(k) for a, k in keys.items()}

    def digest(self, order: tuple) -> bytes:
        struct = keccak(encode(
            ["bytes32", "address", "uint256", "int256", "uint256", "uint256", "uint256", "bool"],
            [ORDER_TYPEHASH, *order],
        ))
        return keccak(b"\x19\x01" + self.domain + struct)

    def sign(self, order: tuple, signer: str | None = None) -> bytes:
        key = self.keys[address_of(signer or order[0])]
        sig = key.sign_recoverable(self.digest(order), hasher=None)
        return sig[:64] + bytes([sig[64] + 27])
