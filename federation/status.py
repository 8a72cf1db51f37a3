"""A read-only snapshot of a hub's peer sessions, for ``coophub peers list``, ``coophub status``,
``GET /api/v1/status``, ``GET /api/v1/peers`` and the network page (issue 8: "each session's state, score,
last contact and lag").

It reads the driver's state and changes nothing, so it can be taken at any moment in the event loop. Each row
is JSON-shaped: every field of :class:`~federation.peers.PeerState` as ``Federation.save_peers`` stores it
(so a live row is a superset of a saved one), plus what only the live session knows (docs/cli.md "Peer
sessions"):

``session_state``
    ``open`` (a session is up), ``connecting`` (a dial is under way), ``backoff`` (the last contact failed;
    tried again from ``next_attempt_ms`` on, when anti-entropy or a push next picks it), ``dropped`` (its
    score ran out; no session is accepted or dialed), ``closed`` (there was a session; it closed,
    ``close_reason`` says why) or ``none`` (no session since this hub started). ``dropped`` wins over all;
    then the first that holds, in that order.
``direction``
    ``outbound`` (this hub dialed it) or ``inbound`` (it dialed this hub; the only way to reach a member
    whose URL this hub does not know), ``""`` without an open session.
``last_frame_ms``
    When the open session last received a frame; ``last_contact_ms`` is the later of it and the peer table's
    last successful exchange.
``queued`` and ``pending``
    Records waiting in this hub's push queue for that peer (not yet announced), and requests sent to it not
    yet answered: how far behind *it* is on this hub's news, now. ``lag`` (from the peer table) is the other
    way: records this hub lacked at the last completed anti-entropy session with it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from protocol.identity import format_hub_id

from .peers import PeerState
from .transport import PeerConn

if TYPE_CHECKING:
    from .driver import Federation

__all__ = ["SESSION_STATES", "session_rows", "session_state"]

#: Every value of a row's ``session_state`` (``unknown`` is added by readers that have no running hub).
SESSION_STATES = ("open", "connecting", "backoff", "dropped", "closed", "none")


def session_state(peer: PeerState | None, conn: PeerConn | None, dialing: bool) -> str:
    """The session state of one peer (see the module docstring for the words and their order)."""
    if peer is not None and peer.state == "dropped":
        return "dropped"
    if conn is not None and not conn.closed:
        return "open"
    if dialing:
        return "connecting"
    if peer is not None and peer.state == "failing":
        return "backoff"
    if (peer is not None and peer.session.startswith("closed")) or conn is not None:
        return "closed"
    return "none"


def _conn_fields(conn: PeerConn | None) -> dict[str, Any]:
    if conn is None or conn.closed:
        return {"direction": "", "role": "", "session_opened_ms": None, "last_frame_ms": None, "pending": 0,
                "frames_in": 0, "frames_out": 0}
    return {
        "direction": "outbound" if conn.initiator else "inbound",
        "role": conn.role,
        "session_opened_ms": conn.opened_ms,
        "last_frame_ms": conn.last_frame_ms,
        "pending": len(conn._pending),  # requests awaiting the peer's answer (read, never changed)
        "frames_in": conn.frames_in,
        "frames_out": conn.frames_out,
    }


def _row(fed: Federation, key: str, peer: PeerState | None, conn: PeerConn | None) -> dict[str, Any]:
    lock = fed.client._dialing.get(key) if fed.client is not None else None
    row: dict[str, Any] = dataclasses.asdict(peer) if peer is not None else {"url": key, "state": "", "score": None}
    hub = peer.hub_id if peer is not None and peer.hub_id else (conn.peer if conn is not None else None)
    row["hub_id"] = hub.hex() if hub else ""
    row["hub"] = format_hub_id(hub) if hub else ""
    row.update(_conn_fields(conn))
    contact = [t for t in (row.get("last_contact_ms"), row["last_frame_ms"]) if isinstance(t, int)]
    row["last_contact_ms"] = max(contact) if contact else None
    state = session_state(peer, conn, lock is not None and lock.locked())
    row["session_state"] = state
    text = peer.session if peer is not None else ""
    row["close_reason"] = text.partition(":")[2] if state == "closed" and text.startswith("closed") else ""
    row["queued"] = fed.node.queued(key)
    return row


def session_rows(fed: Federation) -> list[dict[str, Any]]:
    """One row per peer in the table, then one per open session with a hub that is not in it (an applicant's:
    it may push its own profile, nothing more). Reads only; O(peers + sessions)."""
    conns = fed.client.conns if fed.client is not None else {}
    rows = [_row(fed, peer.url, peer, conns.get(peer.url)) for peer in fed.peers]
    for key, conn in list(conns.items()):
        if key not in fed.peers and not conn.closed:
            rows.append(_row(fed, key, None, conn))
    return rows
