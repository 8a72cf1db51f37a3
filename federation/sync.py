"""Anti-entropy sessions: a thin, bounded, sans-IO layer over Negentropy v1 (``federation/negentropy.py``).

PRODUCT.md §3: records are "pulled by periodic anti-entropy with a random peer"; reconciliation is range-based
over (creation time, record id), "so that two hubs in sync compare one fingerprint". The initiator therefore
opens with a single whole-range fingerprint by default (20 bytes; the peer answers 1 byte when the sets are
equal), instead of the reference's 16 bucket fingerprints which only pay off when the sets differ.

Initiator (the hub whose sync timer fired)::

    session = SyncSession(Storage(items), limits)
    for action in session.start():           # SendReconcile(msg)
        ...                                  # send msg as a ``sync`` request on the authenticated peer
                                             # session (GET /fed/v1/session, docs/protocol.md §8), then
    actions = session.on_reply(reply)        # -> SendReconcile | Fetch | Offer | Done, in order

``Fetch`` names ids we lack (the driver asks for them with ``fetch`` requests on the same session, in batches
of ``Limits.fetch_batch``); ``Offer`` names ids the peer lacks (pushed to it unannounced, a ``push`` request);
``Done`` closes the anti-entropy run with its figures (the peer session stays open). Fetches stream while the
run goes on, so a hub far behind starts downloading after the first round trip that reveals a full batch.
"Session" below means one such anti-entropy run, not the peer session that carries it.

Responder: :class:`SyncResponder` answers each message, enforcing the same round and byte bounds, so every
request a peer can make is bounded in size and work (PRODUCT.md §3). The simulation (``federation/sim.py``)
and the tests use it; a running hub answers each ``sync`` request on a session in ``federation/routes.py``,
bounded per message by ``Limits.negentropy_frame_bytes``.

Errors::

    ProtocolError (protocol.errors)
    └── SyncError     reason "invalid" (malformed message), "too-large" (over the rounds or byte budget),
                      "error" (a session used after it finished)
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import ProtocolError
from protocol.limits import Limits

from .negentropy import Negentropy, NegentropyError, Storage

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "Done",
    "Fetch",
    "Offer",
    "SendReconcile",
    "SyncAction",
    "SyncError",
    "SyncResponder",
    "SyncSession",
    "exchange",
]

#: Round trips per session. Range-based reconciliation needs about log16(n) + 1 rounds (5 for 100k records,
#: gossip_theory.py); more rounds than this means a hostile or broken peer, or a frame-limited catch-up that
#: the next session simply continues.
DEFAULT_MAX_ROUNDS = 64


class SyncError(ProtocolError):
    """An anti-entropy message was malformed or over a bound; ``reason`` says which."""


@dataclass(frozen=True, slots=True)
class SendReconcile:
    """Send ``msg`` to the peer as a ``sync`` request on the peer session and feed its reply to
    :meth:`SyncSession.on_reply`."""

    msg: bytes


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch these records (at most ``Limits.fetch_batch`` ids) from the peer.

    ``relay`` says whether to push them on (``Gossip.on_records_received(relay=...)``): True only in the last
    batch of a session that found few differences (at most ``Limits.push_batch``) — news a push missed, or a
    healed partition — and False in a catch-up, where pushing history back to peers that hold it is waste.
    """

    record_ids: tuple[bytes, ...]
    relay: bool


@dataclass(frozen=True, slots=True)
class Offer:
    """The peer lacks these records (at most ``Limits.push_batch``): push them to it (a ``push`` request on the
    peer session, without announcing them first)."""

    record_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """The session ended. ``complete`` is False when it stopped early (``reason``: "rounds", "too-large",
    "invalid"); the next session picks up what is left. Byte counts are Negentropy payloads only."""

    complete: bool
    reason: str
    rounds: int
    bytes_sent: int
    bytes_received: int
    have: int
    need: int


SyncAction = SendReconcile | Fetch | Offer | Done


class SyncSession:
    """The initiator's side of one anti-entropy session with one peer."""

    def __init__(self, storage: Storage, limits: Limits, *, whole_range: bool = True,
                 max_rounds: int = DEFAULT_MAX_ROUNDS, byte_budget: int | None = None) -> None:
        """Prepare a session over a sealed snapshot of this hub's (created_ms, id) items.

        ``byte_budget`` bounds the Negentropy bytes sent plus received (default ``limits.max_fed_body_bytes``:
        a session may cost about as much as one maximal request body).

        Raises:
            ValueError: ``max_rounds`` is below 1, or ``limits.negentropy_frame_bytes`` is between 1 and 4095.
        """
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self._neg = Negentropy(storage, limits.negentropy_frame_bytes)
        self._limits = limits
        self._whole_range = whole_range
        self._max_rounds = max_rounds
        self._budget = limits.max_fed_body_bytes if byte_budget is None else byte_budget
        self._have: list[bytes] = []
        self._need: list[bytes] = []
        # Membership only (never iterated): a hostile peer must not make us fetch one id twice.
        self._have_set: set[bytes] = set()
        self._need_set: set[bytes] = set()
        self._fetched = 0
        self.rounds = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._started = False
        self.done: Done | None = None

    @property
    def have(self) -> list[bytes]:
        """Ids this hub has and the peer lacks, found so far."""
        return list(self._have)

    @property
    def need(self) -> list[bytes]:
        """Ids the peer has and this hub lacks, found so far."""
        return list(self._need)

    def start(self) -> list[SyncAction]:
        """Return the opening message as ``[SendReconcile(msg)]``.

        Raises:
            SyncError: the session was already started (reason "error").
        """
        if self._started:
            raise SyncError("session already started", reason="error")
        self._started = True
        msg = self._neg.initiate(whole_range_fingerprint=self._whole_range)
        self.bytes_sent += len(msg)
        return [SendReconcile(msg)]

    def on_reply(self, msg: bytes) -> list[SyncAction]:
        """Feed the peer's reply; return the fetches and offers it revealed, then either the next
        ``SendReconcile`` or ``Done``.

        A malformed reply ends the session with ``Done(complete=False, reason="invalid")`` rather than an
        exception: it is the peer's fault, and the driver records it as a failed contact.

        Raises:
            SyncError: the session was not started or has finished (reason "error").
        """
        if not self._started or self.done is not None:
            raise SyncError("no reply is expected: the session is not running", reason="error")
        self.rounds += 1
        self.bytes_received += len(msg)
        try:
            next_msg, have, need = self._neg.reconcile_initiator(msg)
        except NegentropyError:
            return self._finish("invalid")
        self._collect(have, need)
        actions: list[SyncAction] = self._full_fetch_batches()
        if next_msg is None:
            return actions + self._finish("ok")
        if self.rounds >= self._max_rounds:
            return actions + self._finish("rounds")
        if self.bytes_sent + self.bytes_received + len(next_msg) > self._budget:
            return actions + self._finish("too-large")
        self.bytes_sent += len(next_msg)
        actions.append(SendReconcile(next_msg))
        return actions

    def abort(self, reason: str = "error") -> list[SyncAction]:
        """End the session early (the peer did not answer); return its ``Done`` (and fetches found so far).

        Raises:
            SyncError: the session has already finished (reason "error").
        """
        if self.done is not None:
            raise SyncError("the session has already finished", reason="error")
        return self._finish(reason)

    def _collect(self, have: list[bytes], need: list[bytes]) -> None:
        for id_ in have:
            if id_ not in self._have_set:
                self._have_set.add(id_)
                self._have.append(id_)
        for id_ in need:
            if id_ not in self._need_set:
                self._need_set.add(id_)
                self._need.append(id_)

    def _full_fetch_batches(self) -> list[SyncAction]:
        """Stream full fetch batches as soon as known (never relayed: more than push_batch differ)."""
        batch = self._limits.fetch_batch
        out: list[SyncAction] = []
        while len(self._need) - self._fetched >= batch:
            out.append(Fetch(tuple(self._need[self._fetched:self._fetched + batch]), relay=False))
            self._fetched += batch
        return out

    def _finish(self, reason: str) -> list[SyncAction]:
        batch = self._limits.fetch_batch
        relay = len(self._need) <= self._limits.push_batch
        out: list[SyncAction] = [Fetch(tuple(self._need[i:i + batch]), relay=relay)
                                 for i in range(self._fetched, len(self._need), batch)]
        self._fetched = len(self._need)
        # Offer only a few records: a peer lacking many is catching up and pulls them itself, batched, in its
        # own sessions; pushing thousands unasked would bypass its flow control.
        if 0 < len(self._have) <= self._limits.push_batch and reason == "ok":
            out.append(Offer(tuple(self._have)))
        self.done = Done(complete=reason == "ok", reason=reason, rounds=self.rounds,
                         bytes_sent=self.bytes_sent, bytes_received=self.bytes_received,
                         have=len(self._have), need=len(self._need))
        out.append(self.done)
        return out


class SyncResponder:
    """The responder's side: answers reconcile messages from one peer's session, within bounds.

    Negentropy's responder keeps no state between messages, so a driver may also make one per request; keeping
    one per peer session is what lets the round and byte bounds span the session.
    """

    def __init__(self, storage: Storage, limits: Limits, *, max_rounds: int = DEFAULT_MAX_ROUNDS,
                 byte_budget: int | None = None) -> None:
        """Answer over a sealed snapshot of this hub's (created_ms, id) items.

        Raises:
            ValueError: ``max_rounds`` is below 1, or ``limits.negentropy_frame_bytes`` is between 1 and 4095.
        """
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self._neg = Negentropy(storage, limits.negentropy_frame_bytes)
        self._max_rounds = max_rounds
        self._budget = limits.max_fed_body_bytes if byte_budget is None else byte_budget
        self.rounds = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def on_message(self, msg: bytes) -> bytes:
        """Answer one initiator message.

        Raises:
            SyncError: reason "too-large" when the session is over its rounds or byte budget (or the message
                is over the frame limit), "invalid" when the message is malformed.
        """
        if self.rounds >= self._max_rounds:
            raise SyncError(f"more than {self._max_rounds} reconcile rounds in one session",
                            reason="too-large")
        if self.bytes_sent + self.bytes_received + len(msg) > self._budget:
            raise SyncError("the session is over its byte budget", reason="too-large")
        self.rounds += 1
        self.bytes_received += len(msg)
        try:
            reply = self._neg.reconcile(msg)
        except NegentropyError as exc:
            reason = "too-large" if "frame size limit" in str(exc) else "invalid"
            raise SyncError(f"bad reconcile message: {exc}", reason=reason) from exc
        self.bytes_sent += len(reply)
        return reply


def exchange(session: SyncSession, responder: SyncResponder) -> list[SyncAction]:
    """Run a whole session against a responder in this process (tests and ``federation/sim.py``); return every
    action except ``SendReconcile``, ending with ``Done``.

    A responder refusal ends the session as the driver would: ``Done(complete=False, reason=<its reason>)``.

    Raises:
        SyncError: the session was already started (reason "error").
    """
    out: list[SyncAction] = []
    pending = session.start()
    while pending:
        action = pending.pop(0)
        if isinstance(action, SendReconcile):
            try:
                reply = responder.on_message(action.msg)
            except SyncError as exc:
                pending = session.abort(exc.reason)
                continue
            pending.extend(session.on_reply(reply))
        else:
            out.append(action)
    return out

