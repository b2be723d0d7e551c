"""Injected faults: a test mode that makes the worker fail on purpose, to prove what it promises.

Two kinds, both off unless ``SAMT124_FAULT_RATE`` / ``SAMT124_FAULT_BATCH_RATE`` are set:

* a **message fault** makes the decision about one intake message raise, inside the per-message
  guard: the message must become one dead letter and the worker must go on. Which messages fail
  is a function of the seed and the message's place in the log (topic, partition, offset), so a
  message read again after a restart fails again, and a test can tell which ones must fail;
* a **batch fault** raises at a message of a batch, outside the per-message guard, as a bug or
  a failing dependency would: nothing from that message on may be acknowledged, and the worker
  must restart from its committed offsets. With a rate ``r`` (per message the worker takes), the
  next failing message is drawn uniformly among the next ``2/r - 1`` (so one in ``1/r`` on
  average, and always one within ``2/r``), wherever the batches happen to split. The draws come
  from a generator seeded with the seed and the number of restarts so far, so a restarted
  worker does not fail at the same place for ever.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field


class InjectedFault(RuntimeError):
    """Raised on purpose by the fault-injection test mode."""


@dataclass
class Faults:
    rate: float = 0.0  # fraction of intake messages whose decision raises
    batch_rate: float = 0.0  # batch faults per message taken
    seed: int = 0
    restarts: int = 0  # how many times the worker restarted itself before this process
    _rng: random.Random = field(init=False, repr=False)
    _until: int = field(init=False, repr=False)  # messages until the next batch fault

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:{self.restarts}")
        self._until = self._draw()

    def _draw(self) -> int:
        if self.batch_rate <= 0:
            return 0
        return self._rng.randrange(1, max(2, math.ceil(2 / self.batch_rate)))

    @property
    def active(self) -> bool:
        return self.rate > 0 or self.batch_rate > 0

    def message_fails(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the decision about the message at this place in the log is made to raise."""
        if self.rate <= 0:
            return False
        text = f"{self.seed}:{topic}:{partition}:{offset}".encode()
        draw = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
        return draw < self.rate * 2**64

    def check_message(self, topic: str, partition: int, offset: int) -> None:
        if self.message_fails(topic, partition, offset):
            raise InjectedFault(f"injected message fault at {topic}[{partition}]@{offset}")

    def batch_point(self, size: int) -> int | None:
        """The index in the next batch of ``size`` messages at which it fails, or ``None``."""
        if self.batch_rate <= 0 or size == 0:
            return None
        if self._until > size:
            self._until -= size
            return None
        point, self._until = self._until - 1, self._draw()
        return point

    def fail_batch(self, index: int, size: int) -> None:
        raise InjectedFault(f"injected batch fault at message {index} of {size}")
