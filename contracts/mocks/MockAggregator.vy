# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title MockAggregator
@notice A Chainlink AggregatorV3-shaped price feed whose answer a test or a local
        deployment controls. Never deployed on a non-local network.
"""

from interfaces import IAggregatorV3

implements: IAggregatorV3


ROUND_MASK: constant(uint256) = 2**80 - 1

decimals: public(uint8)
description: public(String[64])
owner: public(address)

# Round data, as Chainlink keeps it. `_round` packs round id (low 80 bits) and
# updatedAt (next 64 bits) so that a price read costs two storage reads.
_answer: int256
_round: uint256


event AnswerUpdated:
    current: indexed(int256)
    round_id: indexed(uint256)
    updated_at: uint256


@deploy
def __init__(decimals_: uint8, description_: String[64], initial_answer: int256):
    self.decimals = decimals_
    self.description = description_
    self.owner = msg.sender
    self._set(initial_answer, block.timestamp)


@external
def set_answer(answer: int256):
    """
    @notice Publish a new answer stamped with the current block time.
    @param answer The price in the feed's decimals (may be zero or negative to test rejection).
    """
    assert msg.sender == self.owner, "mock_feed: not owner"
    self._set(answer, block.timestamp)


@external
def set_round(answer: int256, updated_at: uint256):
    """
    @notice Publish an answer with an explicit update time (for staleness tests).
    @param answer The price in the feed's decimals.
    @param updated_at The round's updatedAt timestamp.
    """
    assert msg.sender == self.owner, "mock_feed: not owner"
    self._set(answer, updated_at)


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice Chainlink's latest round: (roundId, answer, startedAt, updatedAt, answeredInRound).
    """
    packed: uint256 = self._round
    round_id: uint80 = convert(packed & ROUND_MASK, uint80)
    updated_at: uint256 = packed >> 80
    return round_id, self._answer, updated_at, updated_at, round_id


@internal
def _set(answer: int256, updated_at: uint256):
    round_id: uint256 = (self._round & ROUND_MASK) + 1
    self._answer = answer
    self._round = round_id | (updated_at << 80)
    log AnswerUpdated(current=answer, round_id=round_id, updated_at=updated_at)
