"""ABI helpers without ape: selectors, event topics, 32-byte words and addresses."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak, to_checksum_address


def selector(signature: str) -> bytes:
    """The 4-byte function selector of e.g. "balanceOf(address)"."""
    return keccak(text=signature)[:4]


def topic(signature: str) -> bytes:
    """The topic0 of an event signature."""
    return keccak(text=signature)


def address_of(x: Any) -> str:
    """The checksummed address of a string or of anything with an `.address` (accounts, contracts)."""
    if isinstance(x, str):
        return to_checksum_address(x)
    return to_checksum_address(getattr(x, "address", x))


def word_uint(word: bytes) -> int:
    """A 32-byte ABI word as uint256."""
    return int.from_bytes(word, "big")


def word_int(word: bytes) -> int:
    """A 32-byte ABI word as int256 (two's complement)."""
    v = int.from_bytes(word, "big")
    return v - (1 << 256) if v >> 255 else v
