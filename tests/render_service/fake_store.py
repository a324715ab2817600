"""Redis's get and set, as the workers' health records use them, held in a dict."""

from __future__ import annotations


class MemoryStore:
    """``values`` by key, and the expiry (seconds) each ``set`` asked for in ``expiry_s``."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.expiry_s: dict[str, int | None] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str, ex: int | None = None) -> None:
        self.values[name] = value
        self.expiry_s[name] = ex
