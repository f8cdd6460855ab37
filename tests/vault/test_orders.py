"""cancel and order_hash (EIP-712 digest shared by Python and the vault)."""

import ape
from eth_utils import keccak

from backstop.client.actors import fill, signed_order
from backstop.core.orders import MAX_EXPIRY, Order, build_order, order_digest
from backstop.core.units import wad

ORDER_TYPE = "Order(address maker,uint256 market,int256 size,uint256 price,uint256 nonce,uint256 expiry,bool reduce_only)"


def _order(system, chain, signer, **kw):
    fields = dict(maker=signer.address, market=0, size=-wad("1.5"), price=wad(3000), nonce=42, expiry=MAX_EXPIRY, reduce_only=True)
    fields.update(kw)
    return build_order(**fields, chain_id=chain.chain_id, vault=system.vault.address)


def _eip191_digest(order: Order) -> bytes:
    """keccak(0x19 || version || domain separator || struct hash), computed here from the
    signable message's parts, independently of backstop.core.orders.order_digest."""
    message = order.signable_message
    return keccak(b"\x19" + message.version + message.header + message.body)


def test_order_hash_equals_python_eip712_digest(any_system, chain, maker):
    order = _order(any_system, chain, maker)
    digest = _eip191_digest(order)
    assert any_system.vault.order_hash(tuple(order)) == digest
    assert any_system.vault.order_hash(tuple(order)) == order_digest(order)


def test_order_hash_is_bound_to_the_vault(system, system18, chain, maker):
    a = _order(system, chain, maker)
    b = _order(system18, chain, maker)
    assert system.vault.order_hash(tuple(a)) != system18.vault.order_hash(tuple(b))
    # the same fields hash differently in each vault (the domain names the verifying contract)
    assert system.vault.order_hash(tuple(a)) != system18.vault.order_hash(tuple(a))
    assert system18.vault.order_hash(tuple(b)) == _eip191_digest(b)


def test_order_hash_changes_with_every_field(system, chain, maker, other):
    base = system.vault.order_hash(tuple(_order(system, chain, maker)))
    for change in (dict(maker=other.address), dict(market=1), dict(size=wad("1.5")), dict(price=wad(3001)),
                   dict(nonce=43), dict(expiry=MAX_EXPIRY - 1), dict(reduce_only=False)):
        assert system.vault.order_hash(tuple(_order(system, chain, maker, **change))) != base, change


def test_typehash_and_domain(system, chain, maker):
    """The domain is name "Backstop", version "1", this chain and the vault's address:
    a digest built with any other name or version does not match."""
    assert system.vault.ORDER_TYPEHASH() == keccak(text=ORDER_TYPE)
    order = _order(system, chain, maker)
    fields = {k: getattr(order, k) for k in ("maker", "market", "size", "price", "nonce", "expiry", "reduce_only")}
    for name, version in (("Backstop", "2"), ("Other", "1")):
        other = Order(**fields, eip712_name=name, eip712_version=version, eip712_chainId=chain.chain_id,
                      eip712_verifyingContract=system.vault.address)
        assert system.vault.order_hash(tuple(order)) != _eip191_digest(other)
    assert system.vault.order_hash(tuple(order)) == _eip191_digest(order)


def test_signed_order_hash_is_the_filled_key(funded, vault, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    fill(funded, order, trader, wad("0.25"))
    assert vault.filled(vault.order_hash(order.as_tuple())) == wad("0.25")


# ---------------------------------------------------------------- cancel


def test_cancel_marks_order_and_emits_event(funded, vault, maker, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    digest = vault.order_hash(order.as_tuple())
    tx = vault.cancel(order.as_tuple(), sender=maker)
    assert vault.filled(digest) == 2**256 - 1
    (event,) = vault.OrderCancelled.from_receipt(tx)
    assert event.order_hash == digest
    assert event.maker == maker.address


def test_cancel_by_someone_else_reverts(funded, vault, maker, attacker, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: not maker"):
        vault.cancel(order.as_tuple(), sender=attacker)
    assert vault.filled(vault.order_hash(order.as_tuple())) == 0


def test_double_cancel_reverts(funded, vault, maker, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    vault.cancel(order.as_tuple(), sender=maker)
    with ape.reverts("vault: order cancelled"):
        vault.cancel(order.as_tuple(), sender=maker)


def test_cancel_only_affects_that_order(funded, vault, maker, trader, eth):
    cancelled = signed_order(funded, maker, eth.id, wad(1), wad(3000), nonce=500)
    live = signed_order(funded, maker, eth.id, wad(1), wad(3000), nonce=501)
    vault.cancel(cancelled.as_tuple(), sender=maker)
    fill(funded, live, trader)
    assert vault.position(maker, eth.id)[0] == wad(1)


def test_cancel_works_while_paused(funded, vault, deployer, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    vault.pause(sender=deployer)
    vault.cancel(order.as_tuple(), sender=maker)
    vault.unpause(sender=deployer)
    with ape.reverts("vault: order cancelled"):
        fill(funded, order, trader)
