"""The session half of :class:`~federation.driver.Federation`: accepting peer sessions, deciding what each
proven peer may do, telling the node (``FederationNode``) about sessions, and the requests only a session can
make. Functions of the Federation (``fed``), kept apart so the driver module stays small.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from protocol.identity import format_hub_id
from protocol.records import peek_author

from . import session as sx
from .routes import own_profile, serve_request
from .transport import PeerConn, PeerUnavailable, accept
from .wire import WireError

if TYPE_CHECKING:
    from .driver import Federation

log = logging.getLogger("coophub.federation")

__all__ = ["accept_session", "admit", "introduce", "note_inbound", "on_open", "receive_push", "serve", "wanted"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Refusal:
    """A push result made without ingest (an applicant's record that is not its own profile, or over quota)."""

    id: str
    status: str
    reason: str | None


# -- sessions --------------------------------------------------------------------------------------------

async def accept_session(fed: Federation, request: web.Request) -> web.StreamResponse:
    """``GET /fed/v1/session``: the responder's handshake, then serve the session until it closes."""
    open_now = fed.client.open_sessions() if fed.client else 0
    if fed._stopped or fed.client is None or open_now >= fed.limits.max_sessions:
        raise web.HTTPServiceUnavailable(text='{"error": "error", "detail": "too many peer sessions, or the '
                                              'hub is stopping; try again later"}',
                                         content_type="application/json")
    ws, conn = await accept(request, fed.home.key, fed._association(), fed.limits, fed.replay,
                            functools.partial(admit, fed), functools.partial(serve, fed), now_ms=fed.now_ms)
    if conn is None:
        fed.stats["sessions_refused"] += 1
        return ws
    fed.stats["sessions_accepted"] += 1
    conn.key = inbound_key(fed, conn)
    fed.client.attach(conn)
    mark_session(fed, conn, "in")
    fed._spawn(introduce(fed, [conn]))
    if conn.key.startswith("session:"):
        # The URL it claims may be one we know but have not reached yet (it started after our first try):
        # dial it now, and the proven key tells whether it is this hub (on_open then files both together).
        fed._act(fed.node.dial_due(fed.now_ms()))
    try:
        await conn.run()
    finally:
        session_closed(fed, conn)
    return ws

async def admit(fed: Federation, est: sx.Established) -> str:
    """The role of a proven peer: refused if we dropped it, "member" if it is eligible, else "applicant"."""
    if fed.node.hub_dropped(est.peer):
        raise sx.SessionRefused("dropped", "this hub dropped yours after invalid records")
    eligible = await fed.store.read(fed.store.is_eligible, est.peer)
    if eligible:
        return "member"
    applicants = sum(1 for c in fed.client.conns.values() if not c.closed and c.role != "member") if fed.client else 0
    if applicants >= fed.limits.max_applicant_sessions:
        raise sx.SessionRefused("busy", f"this hub holds {applicants} applicants' sessions, its most "
                                "(max_applicant_sessions); try again later")
    return "applicant"

def inbound_key(fed: Federation, conn: PeerConn) -> str:
    """The peer-table key of an inbound session (``FederationNode.inbound_peer``)."""
    return fed.node.inbound_peer(conn.peer, conn.role, fed.now_ms(), conn.url)

async def on_open(fed: Federation, conn: PeerConn) -> None:
    """A session we dialed is up: decide what the peer may ask of us (member or applicant), remember the
    key it proved, and read its frames in the background."""
    conn.role = "member" if await fed.store.read(fed.store.is_eligible, conn.peer) else "applicant"
    alias = f"session:{format_hub_id(conn.peer)}"
    fed.node.outbound_proved(conn.key, conn.peer)
    if fed.client is not None and alias != conn.key:
        # The session that hub dialed to us first, filed under the alias until now: file it with this one,
        # where PeerClient.attach's tie-break decides which of the two both sides keep.
        fed.client.refile(alias, conn.key)
    mark_session(fed, conn, "out")
    fed._spawn(run_conn(fed, conn), lasting=True)
    fed._spawn(introduce(fed, [conn]))


async def introduce(fed: Federation, conns: list[PeerConn] | None = None) -> None:
    """An applicant's hub pushes its own quarantined profile (docs/protocol.md §2.3) over its sessions
    (``conns``; None: every open one), so the members it contacted hold it in quarantine and list it for their
    members to sponsor (PRODUCT.md §3.2). Called when a session opens, either way (the tie-break may keep the
    one the member dialed), and when this hub publishes that profile; a member's hub holds none and sends
    nothing."""
    if fed.client is None:
        return
    raw = await fed.store.read(fed.store.applicant_raw, fed.home.key.public)
    if raw is None:
        return
    targets = conns if conns is not None else fed.client.open_conns()
    for conn in targets:
        if conn.closed:
            continue
        try:
            await fed.client.push(conn.key, [raw])
            fed.stats["introductions_sent"] += 1
        except (PeerUnavailable, WireError) as exc:
            log.info("introduction to %s failed: %s", conn.key, exc)

async def run_conn(fed: Federation, conn: PeerConn) -> None:
    try:
        await conn.run()
    finally:
        session_closed(fed, conn)

def mark_session(fed: Federation, conn: PeerConn, direction: str) -> None:
    fed.node.session_opened(conn.key, direction, conn.role, fed.now_ms())

def session_closed(fed: Federation, conn: PeerConn) -> None:
    if fed.client is not None:
        fed.client.detach(conn)
    if fed.client is None or conn.key not in fed.client.conns:  # its last session with us
        fed.node.session_closed(conn.key, conn.close_reason or "")

#: Requests whose answer depends on the session's role: an applicant may not announce, and may push only its
#: own profile.
_MEMBER_OPS = frozenset({"announce", "push"})


async def serve(fed: Federation, conn: PeerConn, op: str, body: Any) -> Any:
    if (conn.role != "member" and op in _MEMBER_OPS
            and await fed.store.read(fed.store.is_eligible, conn.peer)):
        # Eligible since its session opened (the charter or its admission arrived meanwhile): a member's
        # request now. refresh_roles does this at each membership change; this catches a session whose role
        # was decided from a read that raced that change.
        await refresh_roles(fed)
        conn.role = "member"
    return await serve_request(fed, conn, op, body)

def note_inbound(fed: Federation, conn: PeerConn) -> None:
    fed.node.inbound_contact(conn.key, fed.now_ms())

async def wanted(fed: Federation, conn: PeerConn, ids: list[bytes]) -> list[bytes]:
    """Of ids ``conn``'s peer announced, those to ask it for: not seen here, not asked of another peer just now
    (``FederationNode.want_candidates``), not being ingested, and not held by the store (stored, deferred or
    quarantined: ``Store.held``). In a burst most announces name records that just arrived from another peer:
    they are answered from memory, without a read."""
    rest = fed.node.want_candidates(conn.key, ids, fed.now_ms())
    rest = [i for i in rest if i not in fed._ingesting]
    if rest:
        held = await fed.store.read(fed.store.held, rest)
        rest = [i for i in rest if i not in held]
    return fed.node.promise(rest, fed.now_ms())

async def receive_push(fed: Federation, conn: PeerConn, raws: list[bytes]) -> list[Any]:
    """Records a proven peer pushed: within its records quota; an applicant's only if its own profile."""
    admitted = conn.records_quota.take(len(raws), fed.now_ms())
    results: list[Any] = [None] * len(raws)
    ingest: list[tuple[int, bytes]] = []
    for index, raw in enumerate(raws):
        rid = hashlib.sha256(raw).hexdigest()
        if index >= admitted:
            results[index] = _Refusal(rid, "refused", "rate-limited")
        elif conn.role != "member" and not own_profile(raw, conn.peer):
            results[index] = _Refusal(rid, "refused", "blocked")
        else:
            ingest.append((index, raw))
    if ingest:
        scored = conn.key in fed.peers
        own = all(peek_author(raw) == conn.peer for _, raw in ingest)
        got = await fed.receive(conn.key, [raw for _, raw in ingest], score=scored, origin=conn.peer,
                                from_author=own)
        for (index, _), result in zip(ingest, got, strict=True):
            results[index] = result
    fed.stats["push_duplicates"] += sum(1 for r in results if getattr(r, "status", "") == "duplicate")
    refused = sum(1 for r in results if isinstance(r, _Refusal))
    if refused:
        fed.stats["push_refused_at_session"] += refused
    return results

async def refresh_roles(fed: Federation) -> None:
    """Membership changed: a peer whose session was an applicant's and who is now eligible gets a member's
    session at once (filed in the peer table, pushed to, scored), without waiting for it to reconnect. An
    applicant learns it was admitted only from records sent to it, so this must not wait for a redial."""
    if fed.client is None:
        return
    for conn in [c for c in fed.client.conns.values() if not c.closed and c.role != "member"]:
        if not await fed.store.read(fed.store.is_eligible, conn.peer) or conn.closed:
            continue
        conn.role = "member"
        if not conn.initiator:
            key = inbound_key(fed, conn)
            if key != conn.key and fed.client.conns.get(conn.key) is conn:
                del fed.client.conns[conn.key]
            conn.key = key
            fed.client.attach(conn)
        mark_session(fed, conn, "out" if conn.initiator else "in")
        fed.stats["sessions_upgraded"] += 1

