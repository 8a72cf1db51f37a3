"""The item store Negentropy reconciles over: a sorted vector of (timestamp, id) items with range fingerprints.

Split from :mod:`federation.negentropy` (which re-exports :class:`Storage`); the layout is about memory: a hub
keeps one of these for every record it holds (docs/performance.md, "Memory").
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from .negentropy_wire import FINGERPRINT_SIZE, ID_SIZE, MAX_U64, Bound, encode_varint

__all__ = ["CHUNK", "SUB_BLOCK", "Storage"]

#: Items per chunk when packed; a chunk is split once an insert takes it past twice this.
CHUNK = 256
#: Each chunk keeps its running id sum after every this many entries (4 bytes an item), so that a prefix sum
#: adds at most SUB_BLOCK - 1 ids by hand.
SUB_BLOCK = 8

_ID_BITS = 8 * ID_SIZE
_MOD_MASK = (1 << _ID_BITS) - 1
_ENTRY = 8 + ID_SIZE  # an entry: the 8-byte big-endian timestamp, then the id
_sha256 = hashlib.sha256


class Storage:
    """A sorted vector of (timestamp, id) items with cheap range fingerprints, in a compact layout.

    Items are sorted as spec "Preparation" requires (timestamp, then id bytes); exact duplicates are dropped.
    Each item is one 40-byte entry — its timestamp as 8 big-endian bytes, then its 32-byte id — so that
    comparing entries as bytes compares items in spec order. Entries live in chunks (``bytes`` of ``CHUNK``
    entries when built, split once an insert takes one past ``2 * CHUNK``). Per chunk the storage keeps its
    first entry, the index of its first item, the sum of its ids and the sum of every id before it (spec
    "Fingerprint Algorithm": ids read as 256-bit little-endian integers, summed mod 2**256), and its running
    sums after every ``SUB_BLOCK`` entries. A range's fingerprint is one
    subtraction of two prefix sums, each a chunk's sum plus a running sum plus fewer than ``SUB_BLOCK`` ids,
    then one SHA-256.

    ~45 bytes an item with the bookkeeping: ~43 MiB for a million items, against ~140 bytes an item for one
    packed integer and one prefix sum per item (docs/performance.md). :meth:`add` inserts in place: newer
    items are appended to the last chunk; an older one is inserted into the chunk it falls in (a memmove
    of at most 20 KB) and that chunk's running sums are dropped until next asked for, so a hub need not rebuild
    its set after each record. Items given in ascending order are packed as they come, without collecting
    them first (a hub builds its storage from a sorted index scan).
    """

    __slots__ = ("_chunks", "_firsts", "_memo", "_own", "_starts", "_subs", "_sums")

    def __init__(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Seal ``items`` into a sorted, de-duplicated vector.

        Raises:
            ValueError: an item's timestamp is not an int in [0, 2**64 - 1) (2**64 - 1 is reserved for
                "infinity", spec "Preparation") or its id is not exactly 32 bytes.
        """
        chunks: list[bytes] = []
        current = bytearray()
        last = b""
        iterator = iter(items)
        for item in iterator:
            entry = _entry(item)
            if entry <= last:
                if entry == last:
                    continue  # a repeat of the previous item
                # Not in ascending order: collect everything and sort (duplicates anywhere are dropped).
                rest = {entry, *(_entry(i) for i in iterator)}
                rest.update(_split(bytes(current)))
                for chunk in chunks:
                    rest.update(_split(chunk))
                chunks, current = _chunked(b"".join(sorted(rest))), bytearray()
                break
            current += entry
            last = entry
            if len(current) == CHUNK * _ENTRY:
                chunks.append(bytes(current))
                current = bytearray()
        if current:
            chunks.append(bytes(current))
        self._chunks = chunks
        self._subs: list[bytes | None] = []
        self._own: list[int] = []
        for chunk in chunks:
            subs, own = _sub_sums(chunk)
            self._subs.append(subs)
            self._own.append(own)
        self._firsts: list[bytes] = []
        self._starts: list[int] = [0]
        self._sums: list[int] = [0]
        self._reindex(0)

    def _reindex(self, start: int) -> None:
        """Recompute the per-chunk index from chunk ``start`` on (its predecessors are unchanged)."""
        self._memo = (-1, 0, -1, 0)
        chunks, own = self._chunks, self._own
        del self._firsts[start:], self._starts[start + 1:], self._sums[start + 1:]
        firsts, starts, sums = self._firsts, self._starts, self._sums
        count, total = starts[start], sums[start]
        for c in range(start, len(chunks)):
            chunk = chunks[c]
            firsts.append(chunk[:_ENTRY])
            count += len(chunk) // _ENTRY
            total = (total + own[c]) & _MOD_MASK
            starts.append(count)
            sums.append(total)

    def __len__(self) -> int:
        return self._starts[-1]

    def add(self, items: Iterable[tuple[int, bytes]]) -> int:
        """Add ``items`` in place, keeping the order; return how many were new.

        Items newer than every stored one (how a hub's new records arrive) are appended to the last chunk.
        An older one (a catch-up, a healed partition) is inserted into the chunk it falls in; a chunk that
        grows past ``2 * CHUNK`` entries is split. Then the per-chunk index is recomputed from the first chunk
        changed: O(n / CHUNK) integer additions, a fraction of a millisecond at a million items.

        Raises:
            ValueError: as :class:`Storage` does for a malformed item (nothing is added then).
        """
        fresh = Storage(items)
        if not len(fresh):
            return 0
        if not len(self):
            self._chunks, self._own, self._subs = fresh._chunks, fresh._own, fresh._subs
            self._firsts, self._starts, self._sums = fresh._firsts, fresh._starts, fresh._sums
            self._memo = fresh._memo
            return len(fresh)
        chunks = self._chunks
        if fresh._firsts[0] > chunks[-1][-_ENTRY:]:  # all newer: append to the last chunk
            by_chunk = {len(chunks) - 1: [b"".join(fresh._chunks)]}
        else:
            by_chunk = {}
            for chunk in fresh._chunks:
                for entry in _split(chunk):
                    by_chunk.setdefault(max(0, bisect_right(self._firsts, entry) - 1), []).append(entry)
        added = 0
        for c in sorted(by_chunk, reverse=True):  # from the end, so that splits leave lower indexes valid
            merged, own, n = _merge(chunks[c], by_chunk[c], self._own[c])
            if not n:
                continue
            added += n
            pieces = _chunked(merged) if len(merged) > 2 * CHUNK * _ENTRY else [merged]
            chunks[c:c + 1] = pieces
            self._subs[c:c + 1] = [None] * len(pieces)
            self._own[c:c + 1] = [own] if len(pieces) == 1 else [
                _id_sum(piece, 0, len(piece) // _ENTRY) & _MOD_MASK for piece in pieces]
        if added:
            self._reindex(min(by_chunk))
        return added

    def _locate(self, index: int) -> tuple[int, int]:
        """(chunk, offset in it) of item ``index``, for 0 <= index < len(self)."""
        c = bisect_right(self._starts, index) - 1
        return c, index - self._starts[c]

    def _entry_at(self, index: int) -> bytes:
        c, k = self._locate(index)
        return self._chunks[c][k * _ENTRY:(k + 1) * _ENTRY]

    def item(self, index: int) -> tuple[int, bytes]:
        """Return the item at ``index`` in sorted order.

        Raises:
            IndexError: ``index`` is out of range.
        """
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("storage index out of range")
        entry = self._entry_at(index)
        return int.from_bytes(entry[:8], "big"), entry[8:]

    def ids(self, lower: int = 0, upper: int | None = None) -> list[bytes]:
        """Return the ids of the items in ``[lower, upper)``, in sorted order."""
        lower, upper, _ = slice(lower, upper).indices(len(self))
        out: list[bytes] = []
        if lower >= upper:
            return out
        c, k = self._locate(lower)
        while lower < upper:
            chunk = self._chunks[c]
            end = min(len(chunk) // _ENTRY, k + upper - lower)
            out += [chunk[o + 8:o + _ENTRY] for o in range(k * _ENTRY, end * _ENTRY, _ENTRY)]
            lower += end - k
            c, k = c + 1, 0
        return out

    def find_lower_bound(self, lower: int, upper: int, key: int) -> int:
        """Return the first index in ``[lower, upper)`` whose item is not below ``key``, else ``upper``."""
        entry = key.to_bytes(_ENTRY, "big")  # a key packs the timestamp above the id: the same order
        c = bisect_left(self._firsts, entry)
        index = self._starts[c]
        if c > 0:  # the first entry >= key may be inside the previous chunk
            chunk = self._chunks[c - 1]
            k = bisect_left(range(len(chunk) // _ENTRY), entry,
                            key=lambda i: chunk[i * _ENTRY:(i + 1) * _ENTRY])
            index = self._starts[c - 1] + k
        return max(lower, min(index, upper))

    def _prefix(self, index: int) -> int:
        """The sum of the ids of the first ``index`` items, mod 2**256.

        The last two answers are kept: Negentropy asks for adjacent ranges (a range's upper bound is the
        next one's lower bound), so most fingerprints need one new prefix sum, not two.
        """
        a, sum_a, b, sum_b = self._memo
        if index == b:
            return sum_b
        if index == a:
            return sum_a
        if index >= self._starts[-1]:
            total = self._sums[-1]
        else:
            c, k = self._locate(index)
            block = k // SUB_BLOCK
            total = self._sums[c]
            chunk = self._chunks[c]
            if block:
                subs = self._subs[c]
                if subs is None:
                    subs = self._subs[c] = _sub_sums(chunk)[0]
                total += int.from_bytes(subs[(block - 1) * ID_SIZE:block * ID_SIZE], "little")
            total = (total + _id_sum(chunk, block * SUB_BLOCK, k)) & _MOD_MASK
        self._memo = (b, sum_b, index, total)
        return total

    def fingerprint(self, lower: int, upper: int) -> bytes:
        """spec "Fingerprint Algorithm" over the items in ``[lower, upper)``.

        sha256(sum of ids as 256-bit little-endian ints, mod 2**256, as 32 bytes LE || Varint(count))[:16].
        """
        total = (self._prefix(upper) - self._prefix(lower)) & _MOD_MASK
        data = total.to_bytes(ID_SIZE, "little") + encode_varint(upper - lower)
        return _sha256(data).digest()[:FINGERPRINT_SIZE]

    def minimal_bound(self, index: int) -> Bound:
        """The shortest bound separating item ``index - 1`` from item ``index`` (ref ``getMinimalBound``).

        spec "Bound": if the timestamps differ the id prefix is empty, otherwise it is the common id prefix
        plus one byte.
        """
        prev, curr = self._entry_at(index - 1), self._entry_at(index)
        timestamp = int.from_bytes(curr[:8], "big")
        if curr[:8] != prev[:8]:
            return Bound(timestamp)
        differ = int.from_bytes(curr[8:], "big") ^ int.from_bytes(prev[8:], "big")
        shared = (_ID_BITS - differ.bit_length()) // 8
        return Bound(timestamp, curr[8:8 + shared + 1])


def _entry(item: tuple[int, bytes]) -> bytes:
    """An item as its 40-byte entry: the timestamp as 8 big-endian bytes, then the id.

    Raises:
        ValueError: a timestamp outside [0, 2**64 - 1), an id that is not 32 bytes.
    """
    timestamp, id_ = item
    if type(timestamp) is not int or not 0 <= timestamp < MAX_U64:
        raise ValueError(f"timestamp must be an int in [0, 2**64 - 1): {timestamp!r}")
    if type(id_) is not bytes:
        if not isinstance(id_, bytes | bytearray | memoryview):
            raise ValueError("id must be bytes")
        id_ = bytes(id_)
    if len(id_) != ID_SIZE:
        raise ValueError(f"id must be {ID_SIZE} bytes")
    return timestamp.to_bytes(8, "big") + id_


def _split(chunk: bytes) -> list[bytes]:
    return [chunk[o:o + _ENTRY] for o in range(0, len(chunk), _ENTRY)]


def _chunked(packed: bytes) -> list[bytes]:
    """Sorted, unique entries cut into chunks of CHUNK entries."""
    step = CHUNK * _ENTRY
    return [packed[o:o + step] for o in range(0, len(packed), step)]


def _id_sum(chunk: bytes, lower: int, upper: int) -> int:
    """The sum of the ids of entries ``[lower, upper)`` of ``chunk`` as 256-bit little-endian integers (not
    reduced mod 2**256)."""
    total = 0
    from_bytes = int.from_bytes
    for offset in range(lower * _ENTRY + 8, upper * _ENTRY, _ENTRY):
        total += from_bytes(chunk[offset:offset + ID_SIZE], "little")
    return total


def _sub_sums(chunk: bytes) -> tuple[bytes, int]:
    """A chunk's running id sums after every SUB_BLOCK entries (32 bytes little-endian each, mod 2**256), and
    the sum of all its ids."""
    out = bytearray()
    total = 0
    n = len(chunk) // _ENTRY
    for start in range(0, n, SUB_BLOCK):
        end = min(n, start + SUB_BLOCK)
        total = (total + _id_sum(chunk, start, end)) & _MOD_MASK
        if end - start == SUB_BLOCK:
            out += total.to_bytes(ID_SIZE, "little")
    return bytes(out), total


def _merge(chunk: bytes, entries: list[bytes], own: int) -> tuple[bytes, int, int]:
    """Insert sorted ``entries`` (or one packed run of them) into ``chunk``, skipping those it holds; return
    the new chunk, its id sum and how many were inserted."""
    if len(entries) == 1 and len(entries[0]) > _ENTRY:  # a packed run, all after the chunk's last entry
        run = entries[0]
        return chunk + run, (own + _id_sum(run, 0, len(run) // _ENTRY)) & _MOD_MASK, len(run) // _ENTRY
    if len(entries) > 32:  # many: one sort beats a memmove each
        held = set(_split(chunk))
        new = [e for e in entries if e not in held]
        if not new:
            return chunk, own, 0
        merged = b"".join(sorted([*held, *new]))
        return merged, _id_sum(merged, 0, len(merged) // _ENTRY) & _MOD_MASK, len(new)
    buf = bytearray(chunk)
    inserted = 0
    for entry in entries:
        n = len(buf) // _ENTRY
        k = bisect_left(range(n), entry, key=lambda i: bytes(buf[i * _ENTRY:(i + 1) * _ENTRY]))
        if k < n and buf[k * _ENTRY:(k + 1) * _ENTRY] == entry:
            continue
        buf[k * _ENTRY:k * _ENTRY] = entry
        own = (own + int.from_bytes(entry[8:], "little")) & _MOD_MASK
        inserted += 1
    return bytes(buf), own, inserted
