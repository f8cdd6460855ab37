"""EIP-712 orders: the same typed struct and domain as MarginVault."""

from dataclasses import dataclass

from eip712.messages import EIP712Message
from eth_account.messages import _hash_eip191_message
from eth_pydantic_types import abi

EIP712_NAME = "Backstop"
EIP712_VERSION = "1"
MAX_EXPIRY = 2**64


class Order(EIP712Message):
    """The class name is the EIP-712 primary type; field order matches the vault's typehash."""

    maker: abi.address
    market: abi.uint256
    size: abi.int256
    price: abi.uint256
    nonce: abi.uint256
    expiry: abi.uint256
    reduce_only: abi.bool


@dataclass(frozen=True)
class SignedOrder:
    """An order as the vault's `fill` takes it, with the maker's r || s || v signature."""

    maker: str
    market: int
    size: int
    price: int
    nonce: int
    expiry: int
    reduce_only: bool
    signature: bytes

    def as_tuple(self) -> tuple:
        return (self.maker, self.market, self.size, self.price, self.nonce, self.expiry, self.reduce_only)


def build_order(
    *,
    maker: str,
    market: int,
    size: int,
    price: int,
    nonce: int,
    expiry: int = MAX_EXPIRY,
    reduce_only: bool = False,
    chain_id: int,
    vault: str,
) -> Order:
    return Order(
        maker=maker,
        market=market,
        size=size,
        price=price,
        nonce=nonce,
        expiry=expiry,
        reduce_only=reduce_only,
        eip712_name=EIP712_NAME,
        eip712_version=EIP712_VERSION,
        eip712_chainId=chain_id,
        eip712_verifyingContract=vault,
    )


def sign_order(account, order: Order) -> SignedOrder:
    """Sign with an ape account (or anything with `sign_message`)."""
    signature = account.sign_message(order).encode_rsv()
    return SignedOrder(
        maker=order.maker,
        market=order.market,
        size=order.size,
        price=order.price,
        nonce=order.nonce,
        expiry=order.expiry,
        reduce_only=order.reduce_only,
        signature=bytes(signature),
    )


def order_digest(order: Order) -> bytes:
    """The EIP-712 digest (what `vault.order_hash` returns and the maker signs)."""
    return bytes(_hash_eip191_message(order.signable_message))
