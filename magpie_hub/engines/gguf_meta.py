"""Read a few key/value entries of a GGUF file's header without parsing all of it.

`gguf.GGUFReader` builds numpy views of every field, the whole vocabulary included: 3.6 s
for SmolLM2's 49K tokens, before the first request of every run. We walk the header once,
keep only the wanted keys, and skip arrays by their lengths (a GGUF v2/v3 file).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
STRING, ARRAY = 8, 9


class _Cursor:
    def __init__(self, data: Any, order: str) -> None:
        self.data, self.order, self.at = data, order, 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.at)
        self.at += size
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        raw = bytes(self.data[self.at : self.at + length])
        if len(raw) != length:
            raise EOFError("the file ends inside a string")
        self.at += length
        return raw.decode("utf-8")

    def skip_string(self) -> None:
        length = self.unpack("Q")  # first: `self.at += self.unpack(...)` reads `at` too early
        self.at += length

    def value(self, kind: int, keep: bool) -> Any:
        """Read (or, unless `keep`, only skip) one value of type `kind`."""
        if kind == STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if kind == ARRAY:
            item, count = self.unpack("I"), self.unpack("Q")
            if item in SCALARS and not keep:
                self.at += count * struct.calcsize(SCALARS[item])
                return None
            items = [self.value(item, keep) for _ in range(count)]
            return items if keep else None
        if kind not in SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        return self.unpack(SCALARS[kind])


def read_header(path: Path, wanted: Callable[[str], bool]) -> dict[str, Any]:
    """The header entries whose key `wanted` accepts; `tokens_at` holds where the
    vocabulary array (`tokenizer.ggml.tokens`) starts, for `token_texts`."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ValueError("no GGUF magic number")
        order = "<" if struct.unpack_from("<I", data, 4)[0] < 0x10000 else ">"
        cur = _Cursor(data, order)
        cur.at = 4
        if cur.unpack("I") < 2:
            raise ValueError("GGUF version 1 is not supported")
        cur.unpack("Q")  # tensors
        entries: dict[str, Any] = {}
        for _ in range(cur.unpack("Q")):
            key, kind = cur.string(), cur.unpack("I")
            if key == "tokenizer.ggml.tokens":
                entries["tokens_at"] = cur.at
            value = cur.value(kind, keep=wanted(key))
            if wanted(key):
                entries[key] = value
        return entries


def token_texts(path: Path, tokens_at: int, ids: list[int]) -> dict[int, str]:
    """The vocabulary's texts at `ids`, read from the array at offset `tokens_at`."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        order = "<" if struct.unpack_from("<I", data, 4)[0] < 0x10000 else ">"
        cur = _Cursor(data, order)
        cur.at = tokens_at
        if cur.unpack("I") != STRING:
            raise ValueError("tokenizer.ggml.tokens is not an array of strings")
        count, found = cur.unpack("Q"), {}
        wanted = {i for i in ids if 0 <= i < count}
        for index in range(max(wanted, default=-1) + 1):
            if index in wanted:
                found[index] = cur.string()
            else:
                cur.skip_string()
        return found
