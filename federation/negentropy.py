"""Negentropy protocol v1: range-based set reconciliation, sans-IO (docs/negentropy.md).

Two hubs each hold a set of (timestamp, 32-byte id) items. The initiator sends a message describing ranges
of its set by fingerprint or by id list; the responder answers range by range, splitting ranges whose
fingerprints differ; after a few round trips the initiator knows which ids it has that the responder lacks
(*have*) and which the responder has that it lacks (*need*). The protocol is "Negentropy Protocol V1"
(docs/negentropy-protocol-v1.md in hoytech/negentropy, cited as *spec*), the one behind Nostr's NIP-77.

This module mirrors the reference C++ implementation (``cpp/negentropy.h``, cited as *ref*) statement by
statement, so that given the same items and frame size limit it emits byte-identical messages — including the
reference's opening (16 bucket fingerprints, or an id list below 32 items), its merging of skipped ranges and
its truncation at the frame size limit. It does no I/O, reads no clock and keeps no state between messages
beyond the role flag, so a transport can drive it however it likes::

    client = Negentropy(Storage(my_items), frame_size_limit=60_000)
    msg = client.initiate()
    while msg is not None:
        reply = send_to_peer_and_wait(msg)             # the peer runs Negentropy(...).reconcile(msg)
        msg, have, need = client.reconcile_initiator(reply)

Every malformed or hostile message raises :class:`NegentropyError` and nothing else.
"""

from __future__ import annotations

from .negentropy_storage import Storage
from .negentropy_wire import (
    FINGERPRINT_SIZE,
    ID_SIZE,
    INFINITY,
    MAX_U64,
    MIN_FRAME_SIZE_LIMIT,
    PROTOCOL_VERSION,
    Bound,
    Mode,
    NegentropyError,
    Reader,
    encode_varint,
)

__all__ = [
    "FINGERPRINT_SIZE",
    "ID_SIZE",
    "PROTOCOL_VERSION",
    "Bound",
    "Mode",
    "Negentropy",
    "NegentropyError",
    "Storage",
]

#: ref ``splitRange``: a mismatched range is split into this many buckets ...
BUCKETS = 16
#: ... unless it holds fewer than ``2 * BUCKETS`` items, which are then sent as an id list.
ID_LIST_THRESHOLD = 2 * BUCKETS
#: ref ``exceededFrameSizeLimit``: output stops growing once it passes ``frameSizeLimit - 200``.
FRAME_SIZE_SLACK = 200

_SKIP = encode_varint(Mode.SKIP)
_FINGERPRINT = encode_varint(Mode.FINGERPRINT)
_ID_LIST = encode_varint(Mode.ID_LIST)


def _first_seen(ids: list[bytes], reported: set[bytes]) -> list[bytes]:
    """Return the ids not in ``reported``, in order and without repeats, adding them to ``reported``."""
    fresh: list[bytes] = []
    for id_ in ids:
        if id_ not in reported:
            reported.add(id_)
            fresh.append(id_)
    return fresh


class Negentropy:
    """One side of a Negentropy v1 reconciliation over a :class:`Storage`.

    The initiator calls :meth:`initiate` once and then :meth:`reconcile_initiator` with each reply; the
    responder calls :meth:`reconcile` with each incoming message. ``frame_size_limit`` (0 = none, otherwise at
    least 4096) bounds every outgoing message; incoming messages larger than it are refused.
    """

    __slots__ = (
        "_storage",
        "_frame_size_limit",
        "_initiator",
        "_last_timestamp_in",
        "_last_timestamp_out",
        "_reported_have",
        "_reported_need",
    )

    def __init__(self, storage: Storage, frame_size_limit: int = 0) -> None:
        """Create a reconciler over ``storage``.

        Raises:
            ValueError: ``frame_size_limit`` is negative or between 1 and 4095 (ref constructor).
        """
        if frame_size_limit < 0 or 0 < frame_size_limit < MIN_FRAME_SIZE_LIMIT:
            raise ValueError(f"frame_size_limit must be 0 or at least {MIN_FRAME_SIZE_LIMIT}")
        self._storage = storage
        self._frame_size_limit = frame_size_limit
        self._initiator = False
        self._last_timestamp_in = 0
        self._last_timestamp_out = 0
        self._reported_have: set[bytes] = set()
        self._reported_need: set[bytes] = set()

    @property
    def is_initiator(self) -> bool:
        """Whether this side opened (or was declared to open) the reconciliation."""
        return self._initiator

    @property
    def frame_size_limit(self) -> int:
        """The byte limit on every message (0 = none)."""
        return self._frame_size_limit

    def set_initiator(self) -> None:
        """Take the initiator role without building an opening message (ref ``setInitiator``)."""
        self._initiator = True

    def initiate(self, whole_range_fingerprint: bool = False) -> bytes:
        """Build the initiator's first message.

        With ``whole_range_fingerprint=False`` this is the reference opening (ref ``initiate``): the whole set
        split as a mismatched range would be — 16 bucket fingerprints, or an id list when the set holds fewer
        than 32 items — byte-identical to the C++ implementation. With ``True`` it is one Fingerprint range
        over the whole space (20 bytes), which settles two equal sets in a single 20 + 1 byte round trip and
        otherwise costs one extra round trip; both are legal v1 messages.

        Raises:
            NegentropyError: this reconciler has already initiated.
        """
        if self._initiator:
            raise NegentropyError("already initiated")
        self._initiator = True
        self._last_timestamp_out = 0
        out = bytearray((PROTOCOL_VERSION,))
        size = len(self._storage)
        if whole_range_fingerprint:
            out += self._encode_bound(INFINITY)
            out += _FINGERPRINT
            out += self._storage.fingerprint(0, size)
        else:
            out += self._split_range(0, size, INFINITY)
        return bytes(out)

    def reconcile(self, msg: bytes) -> bytes:
        """Answer one initiator message as the responder; always returns a message to send back.

        Raises:
            NegentropyError: ``msg`` is malformed or over the frame size limit, or this side is the initiator.
        """
        if self._initiator:
            raise NegentropyError("the initiator must call reconcile_initiator()")
        return self._reconcile(msg, None, None)

    def reconcile_initiator(self, msg: bytes) -> tuple[bytes | None, list[bytes], list[bytes]]:
        """Process one responder reply as the initiator.

        Returns ``(next_message, have, need)``: the message to send next, or ``None`` when reconciliation is
        complete (ref: an output holding only the version byte); the ids this side has and the peer lacks; the
        ids the peer has and this side lacks, as learned from this reply. Each id is reported once per
        session: under a frame size limit the reference folds already-settled ranges into the closing
        fingerprint, so a peer may list the same ids again in a later round (the reference reports them
        twice).

        Raises:
            NegentropyError: ``msg`` is malformed, over the frame size limit or of another protocol version,
                or this side has not initiated.
        """
        if not self._initiator:
            raise NegentropyError("reconcile_initiator() called before initiate()")
        have: list[bytes] = []
        need: list[bytes] = []
        out = self._reconcile(msg, have, need)
        return (
            (None if len(out) == 1 else out),
            _first_seen(have, self._reported_have),
            _first_seen(need, self._reported_need),
        )

    # -- ref ``reconcileAux`` --------------------------------------------------------------------------------

    def _exceeded(self, n: int) -> bool:
        """ref ``exceededFrameSizeLimit``: true once ``n`` bytes pass the limit less 200 bytes of headroom."""
        return bool(self._frame_size_limit) and n > self._frame_size_limit - FRAME_SIZE_SLACK

    def _reconcile(self, query: bytes, have: list[bytes] | None, need: list[bytes] | None) -> bytes:
        """Process every range of ``query`` and build the reply; ``have``/``need`` are given to the initiator.

        Raises:
            NegentropyError: ``query`` is malformed or hostile (see ``negentropy_wire.Reader``).
        """
        if isinstance(query, bytearray | memoryview):
            query = bytes(query)
        elif not isinstance(query, bytes):
            raise TypeError(f"a message must be bytes, not {type(query).__name__}")
        if self._frame_size_limit and len(query) > self._frame_size_limit:
            raise NegentropyError(f"message of {len(query)} bytes exceeds the frame size limit")
        # spec "Bound": timestamp offsets restart at 0 at the beginning of each message.
        self._last_timestamp_in = self._last_timestamp_out = 0
        storage = self._storage
        initiator = have is not None and need is not None
        full = bytearray((PROTOCOL_VERSION,))

        reader = Reader(query)
        version = reader.byte()
        if not 0x60 <= version <= 0x6F:
            raise NegentropyError(f"invalid protocol version byte 0x{version:02x}")
        if version != PROTOCOL_VERSION:
            # spec "Message": a server that cannot handle the version replies with the highest it supports.
            if initiator:
                raise NegentropyError(f"peer requires unsupported protocol version {version - 0x60}")
            return bytes(full)

        size = len(storage)
        prev_bound = Bound(0)
        prev_key = 0
        prev_index = 0
        skip = False

        while reader.remaining:
            o = bytearray()
            curr_bound = self._decode_bound(reader)
            curr_key = curr_bound.key
            # spec "Bound": ranges are in ascending order and never overlap. Equal bounds (an empty range) are
            # tolerated: the reference itself can end a frame-limited reply with two infinity bounds.
            if curr_key < prev_key:
                raise NegentropyError("range bounds are not in ascending order")
            mode = reader.varint()

            lower = prev_index
            upper = storage.find_lower_bound(prev_index, size, curr_key)

            if mode == Mode.SKIP:
                skip = True

            elif mode == Mode.FINGERPRINT:
                theirs = reader.take(FINGERPRINT_SIZE)
                if theirs != storage.fingerprint(lower, upper):
                    if skip:  # ref ``doSkip``: flush the merged run of skipped ranges first
                        skip = False
                        o += self._encode_bound(prev_bound)
                        o += _SKIP
                    o += self._split_range(lower, upper, curr_bound)
                else:
                    skip = True

            elif mode == Mode.ID_LIST:
                count = reader.varint()
                if count > reader.remaining // ID_SIZE:
                    raise NegentropyError(f"id list of {count} ids is longer than the message")
                raw = reader.take(count * ID_SIZE)
                if have is not None and need is not None:
                    their_ids = dict.fromkeys(raw[i : i + ID_SIZE] for i in range(0, len(raw), ID_SIZE))
                    for id_ in storage.ids(lower, upper):
                        if id_ in their_ids:
                            del their_ids[id_]  # on both sides
                        else:
                            have.append(id_)  # ours only
                    need.extend(their_ids)  # theirs only
                    skip = True
                else:
                    if skip:
                        skip = False
                        o += self._encode_bound(prev_bound)
                        o += _SKIP
                    # Reply with every id we hold in the range, stopping early (and shrinking the range) once
                    # the output passes the frame limit; ref checks before each id, we compute the count.
                    fits = upper - lower
                    if self._frame_size_limit:
                        room = self._frame_size_limit - FRAME_SIZE_SLACK - len(full)
                        fits = min(fits, room // ID_SIZE + 1) if room >= 0 else 0
                    end_bound = curr_bound
                    if fits < upper - lower:
                        upper = lower + fits
                        end_bound = Bound(*storage.item(upper))
                    o += self._encode_bound(end_bound)
                    o += _ID_LIST
                    o += encode_varint(upper - lower)
                    o += b"".join(storage.ids(lower, upper))
                    full += o
                    o = bytearray()

            else:
                raise NegentropyError(f"unknown range mode {mode}")

            if self._exceeded(len(full) + len(o)):
                # ref: frame size limit reached — drop this range's output and close the message with one
                # fingerprint for the remaining range (computed from ``upper``, as the reference does), so the
                # peer keeps reconciling it next round.
                full += self._encode_bound(INFINITY)
                full += _FINGERPRINT
                full += storage.fingerprint(upper, size)
                break
            full += o

            prev_index = upper
            prev_bound = curr_bound
            prev_key = curr_key

        return bytes(full)

    def _split_range(self, lower: int, upper: int, upper_bound: Bound) -> bytes:
        """ref ``splitRange``: describe ``[lower, upper)`` as an id list or as 16 bucket fingerprints.

        Below 32 items the ids are listed; otherwise the items are divided into 16 buckets as evenly as
        possible (the first ``count % 16`` buckets get one extra), each closed by the minimal bound before the
        next bucket's first item, the last by ``upper_bound``.
        """
        storage = self._storage
        count = upper - lower
        out = bytearray()
        if count < ID_LIST_THRESHOLD:
            out += self._encode_bound(upper_bound)
            out += _ID_LIST
            out += encode_varint(count)
            out += b"".join(storage.ids(lower, upper))
            return bytes(out)
        per_bucket, with_extra = divmod(count, BUCKETS)
        curr = lower
        for i in range(BUCKETS):
            bucket_size = per_bucket + (1 if i < with_extra else 0)
            fingerprint = storage.fingerprint(curr, curr + bucket_size)
            curr += bucket_size
            next_bound = upper_bound if curr == upper else storage.minimal_bound(curr)
            out += self._encode_bound(next_bound)
            out += _FINGERPRINT
            out += fingerprint
        return bytes(out)

    # -- bounds ----------------------------------------------------------------------------------------------

    def _decode_bound(self, reader: Reader) -> Bound:
        """Read a spec "Bound", undoing the timestamp delta encoding (ref ``decodeTimestampIn``).

        Raises:
            NegentropyError: truncated input, an over-long varint or an id prefix longer than 32 bytes.
        """
        encoded = reader.varint()
        # spec: 0 is infinity, otherwise 1 + offset from the previous timestamp; ref saturates at infinity.
        timestamp = min(MAX_U64, (MAX_U64 if encoded == 0 else encoded - 1) + self._last_timestamp_in)
        self._last_timestamp_in = timestamp
        length = reader.varint()
        if length > ID_SIZE:
            raise NegentropyError(f"bound id prefix of {length} bytes (at most {ID_SIZE})")
        return Bound(timestamp, reader.take(length))

    def _encode_bound(self, bound: Bound) -> bytes:
        """Write a spec "Bound", timestamp delta-encoded (ref ``encodeTimestampOut``, ``encodeBound``)."""
        timestamp = bound.timestamp
        if timestamp == MAX_U64:
            self._last_timestamp_out = MAX_U64
            encoded = 0
        else:
            # ref does this in uint64 arithmetic; bounds are emitted in ascending order so it never wraps.
            encoded = (((timestamp - self._last_timestamp_out) & MAX_U64) + 1) & MAX_U64
            self._last_timestamp_out = timestamp
        return encode_varint(encoded) + encode_varint(len(bound.prefix)) + bound.prefix
