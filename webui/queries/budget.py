"""How many documents (records or rollups) one request may still examine."""

from __future__ import annotations


class Budget:
    def __init__(self, limit: int):
        self.limit, self.spent = limit, 0

    @property
    def left(self) -> int:
        return self.limit - self.spent
