"""Message texts stored once per run: the content-addressed ``blobs.jsonl`` of a run folder.

Most of a log is the prompts of its ``model_call`` events, and most of a prompt repeats: every
call of a conversation sends the same system message, and each discussion turn re-sends the
transcript so far. The store writes a long message content (``INLINE`` characters or more) as
the key of a *blob*, a line of ``blobs.jsonl``::

    {"role": "user", "blob": "3f9a…"}                                          (events.jsonl)
    {"k": "3f9a…", "p": "77c1…", "n": 1840, "v": "Lars: I would take it.\n…"}  (blobs.jsonl)

A blob holds its text ``v``, or, when it begins with a part of an earlier blob of the same
conversation (the transcript so far), the first ``n`` characters of blob ``p`` followed by
``v``. A text seen before anywhere in the run (a system message) is the same key, written once.
A blob line is written (and flushed) before the first event line that refers to it, so a log
never refers to a blob it lacks. Every reader of the store resolves blobs back to ``content``
(the event as it was made); only the judging pass, whose judges read no prompt, may leave them
unresolved. The key is the first 32 hex digits of the text's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError

__all__ = ["BLOBS", "BlobReader", "BlobWriter", "compacted"]

BLOBS = "blobs.jsonl"
INLINE = 240  # contents shorter than this stay in the event
SHARED = 64  # a shared beginning shorter than this is not worth a reference
RECENT = 6  # earlier texts of a conversation a new one may begin with
RESOLVED = 512  # resolved texts kept for the next reference (a conversation's chain)
KEY = 32  # hex digits of the key


def blob_key(text: str) -> str:
    """The content address of a blob's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY]


def compacted(messages: Iterable[dict[str, Any]]) -> bool:
    """Whether some message of ``messages`` refers to a blob."""
    return any("blob" in message for message in messages)


def shared_lines(a: str, b: str) -> int:
    """Length of the longest common beginning of ``a`` and ``b`` that ends a line (memcmp by
    bisection: a few slices compared in C, not a loop over characters)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return a.rfind("\n", 0, low) + 1


class BlobWriter:
    """Turns the long message contents of an event into blob keys, collecting the blob lines
    still to write; remembers each open conversation's recent texts (forgotten when it
    finishes) and every key written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: set[str] | None = None  # keys already in the file (read on first use)
        self._recent: dict[str, list[tuple[str, str]]] = {}  # conversation → (key, text)

    def _keys(self) -> set[str]:
        if self._known is None:
            self._known = set(BlobReader(self.path).index())
            _cut_partial_tail(self.path)  # a killed writer's half line: appends follow it
        return self._known

    def finished(self, conversation: str | None) -> None:
        """Forget a finished conversation's recent texts."""
        self._recent.pop(conversation or "", None)

    def compact(self, messages: list[dict[str, Any]], conversation: str | None = None,
                redact: Any = None) -> tuple[list[dict[str, Any]], list[str]]:
        """(the messages with long contents as blob keys, the blob lines to write first);
        ``redact`` is applied to each long content first, so that a blob's shared beginning
        is counted in the text as stored."""
        out, lines = [], []
        recent = self._recent.setdefault(conversation or "", [])
        for message in messages:
            content = message.get("content")
            if not isinstance(content, str) or len(content) < INLINE:
                out.append(message)
                continue
            content = redact(content) if redact is not None else content
            key = blob_key(content)
            if key not in self._keys():
                self._keys().add(key)
                record: dict[str, Any] = {"k": key}
                base = max(((shared_lines(content, text), k) for k, text in recent),
                           default=(0, ""))
                if base[0] >= SHARED:
                    record |= {"p": base[1], "n": base[0]}
                record["v"] = content[base[0]:] if base[0] >= SHARED else content
                lines.append(json.dumps(record, ensure_ascii=False))
            recent.append((key, content))
            del recent[:-RECENT]
            out.append({k: v for k, v in message.items() if k != "content"} | {"blob": key})
        return out, lines


class BlobReader:
    """Resolves blob keys back to contents, reading ``blobs.jsonl`` once on first need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: dict[str, tuple[str | None, int, str]] | None = None
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._read = (0, 0)  # (bytes, lines) of the file read into the index

    def index(self) -> dict[str, tuple[str | None, int, str]]:
        """Key → (earlier blob or None, its characters used, own text) of every whole blob
        line (a partial last line, from a killed writer, is left out: no event refers to
        it)."""
        if self._index is None:
            self._index = {}
            self._read_more()
        return self._index

    def _read_more(self) -> None:
        """Read the whole lines added since the last read (a run still being written)."""
        if not self.path.exists():
            return
        offset, number = self._read
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                number += 1
                try:
                    self.add(json.loads(line))
                except (ValueError, TypeError, KeyError):
                    raise RunStoreError(f"{self.path}:{number}: not a blob line; the message "
                                        "texts of this run are damaged") from None
                offset += len(line)
        self._read = (offset, number)

    def add(self, blob: dict[str, Any]) -> None:
        """Take one blob record into the index (the writer's, as it writes)."""
        assert self._index is not None
        self._index[blob["k"]] = (blob.get("p"), int(blob.get("n", 0)), str(blob["v"]))

    def text(self, key: str) -> str:
        """The text of a blob (RunStoreError when the file lacks it or a blob it builds on)."""
        index, chain = self.index(), []
        while key not in self._texts:  # walk back to a resolved text or a whole one
            if key not in index:
                self._read_more()  # written since this reader last read the file
            if key not in index:
                raise RunStoreError(f"{self.path}: a message refers to a blob the file does "
                                    "not hold; the message texts of this run are damaged")
            chain.append(key)
            base = index[key][0]
            if base is None:
                break
            key = base
        text = self._texts[key] if key in self._texts else ""
        for link in reversed(chain):
            base, used, own = index[link]
            text = (text[:used] if base is not None else "") + own
            self._texts[link] = text
        self._texts.move_to_end(chain[0] if chain else key)
        while len(self._texts) > RESOLVED:
            self._texts.popitem(last=False)
        return text

    def resolve(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages with their contents back."""
        return [({k: v for k, v in m.items() if k != "blob"} | {"content": self.text(m["blob"])})
                if "blob" in m else m for m in messages]


def _cut_partial_tail(path: Path) -> None:
    """Cut a last line without its newline (only the holder of the run's lock writes)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
