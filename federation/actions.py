"""The actions :class:`~federation.node.FederationNode` returns: what the driver (or the simulation) performs,
then reports back to the node (see the node's docstring for which event answers which action)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClosePeer", "DiscoverPeers", "DropPeer", "NodeAction", "OpenSession", "RefreshMembership",
           "RetryDeferred", "ReviewRoles", "SavePeers", "SendAnnounce", "SendRecords", "StartSync"]


@dataclass(frozen=True, slots=True)
class SendAnnounce:
    """Announce these ids (at most ``Limits.push_batch`` with ``unasked``) to ``peer`` and push the records it
    wants, and push the ``unasked`` records without announcing them (signed here just now: no peer can hold
    them, so asking would cost a round trip and two frames for nothing); report the result with
    :meth:`FederationNode.push_finished` (``announced=True``, every id of both)."""

    peer: str
    record_ids: tuple[bytes, ...]
    unasked: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SendRecords:
    """Push these records to ``peer`` without announcing: an anti-entropy session proved it lacks them."""

    peer: str
    record_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StartSync:
    """Run one anti-entropy session with ``peer`` (``catch_up``: page through its records instead, while this
    hub has no charter); report the end with :meth:`FederationNode.sync_finished`."""

    peer: str
    catch_up: bool


@dataclass(frozen=True, slots=True)
class OpenSession:
    """Dial ``peer`` (a URL) and open a session with it; report the end with
    :meth:`FederationNode.dial_finished`."""

    peer: str


@dataclass(frozen=True, slots=True)
class RetryDeferred:
    """Retry the records the store deferred whose time has come at ``now_ms`` (``Store.retry_due``)."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class DropPeer:
    """``peer`` was dropped (``reason``: "score" after invalid records, "wrong-association", …): close its
    session with close reason "dropped" and send it nothing more."""

    peer: str
    reason: str
    score: int


@dataclass(frozen=True, slots=True)
class ClosePeer:
    """The operator removed ``peer``: close its session ("going-away")."""

    peer: str


@dataclass(frozen=True, slots=True)
class RefreshMembership:
    """Records were stored: read the store's member and profile counts and report them with
    :meth:`FederationNode.membership`."""


@dataclass(frozen=True, slots=True)
class ReviewRoles:
    """Membership changed: an applicant's open session whose hub is eligible now becomes a member's at once
    (``peering.refresh_roles``), without waiting for it to reconnect."""


@dataclass(frozen=True, slots=True)
class DiscoverPeers:
    """Membership or profiles changed: read the peer URLs of members' profiles and report them with
    :meth:`FederationNode.discovered`."""


@dataclass(frozen=True, slots=True)
class SavePeers:
    """Save the peer table (after each scheduled anti-entropy round)."""


NodeAction = (SendAnnounce | SendRecords | StartSync | RetryDeferred | DropPeer | ClosePeer | RefreshMembership
              | ReviewRoles | DiscoverPeers | SavePeers | OpenSession)
