"""Every limit of the protocol and the hub, in one frozen object with units and precedents.

Limits are published to peers (``GET /fed/v1/info``, like a Nostr relay's NIP-11 ``limitation`` object) and a
test checks that the published values are the enforced ones. Load from TOML text, environment and flags with
:func:`limits_from_mapping`; this module does no I/O itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "KIB", "MIB", "MS", "SECONDS", "Limits", "limits_from_mapping"]

KIB = 1024
MIB = 1024 * KIB
MS = 1
SECONDS = 1000 * MS


@dataclass(frozen=True, slots=True)
class Limits:
    """Named limits, each with its unit in the name or the comment."""

    # A whole record's canonical bytes. Matrix caps events at 65,536 bytes and strfry's default
    # maxEventSize is 65,536 too; a guide longer than that is split or attached as a blob.
    max_record_bytes: int = 64 * KIB
    # strfry rejects events more than 900 s ahead; PRODUCT.md §2 says "a few minutes". Hubs run NTP, so 5 min.
    max_future_skew_ms: int = 300 * SECONDS
    # Nesting depth of a body (maps and lists). The deepest kind needs 5; msgpack's own default is 512.
    max_depth: int = 8
    # Guide attachments (blobs): 8 MiB each, fetched on demand by hash.
    max_blob_bytes: int = 8 * MIB
    # HTTP request bodies on the JSON API: one record plus JSON overhead.
    max_api_body_bytes: int = 256 * KIB
    # Records per ingest transaction: one fsync per batch (SQLite WAL commit).
    ingest_batch: int = 500
    # Peer protocol: records per push message and per catch-up page.
    push_batch: int = 200
    fetch_batch: int = 500
    max_fed_body_bytes: int = 8 * MIB
    # Negentropy frame size limit (bytes); the spec requires at least 4,096.
    negentropy_frame_bytes: int = 60 * KIB
    # Peers a new record is pushed to at once (gossipsub's D=6; small associations need fewer).
    push_fanout: int = 4
    # Anti-entropy with one random peer every this many ms (jittered by ±25%).
    sync_interval_ms: int = 5 * SECONDS
    # Exponential backoff for unreachable peers: first retry after 1 s, at most 5 min between tries.
    backoff_base_ms: int = 1 * SECONDS
    backoff_max_ms: int = 300 * SECONDS
    # Peer score: starts at 100, each objective fault it sends (a record refused invalid, too-large or
    # wrong-association) costs 10, a peer at or below 0 is dropped.
    peer_score_start: int = 100
    peer_score_invalid_cost: int = 10
    peer_score_drop_at: int = 0
    # Time credits (docs/protocol.md §6.6): a booked payment is final once its booking is this old: twice the
    # allowed clock skew (a receipt may be dated up to max_future_skew_ms off our clock either way) plus five
    # minutes for gossip to bring every booking dated before it. UK Faster Payments allow two hours to credit.
    credit_settle_ms: int = 15 * 60 * SECONDS
    # --- the storage rule (docs/protocol.md §2.3) ---
    # Records dated before 2025-01-01T00:00:00Z are refused: coophub did not exist before 2025, so such a date
    # is a clock that was never set (a board without a battery-backed clock boots in 1970) or a record
    # back-dated to sort before everything else. NIP-22 lets Nostr relays bound created_at from below too.
    min_created_ms: int = 1_735_689_600_000
    # Deferred records (a reference not held yet, an author not eligible yet, dated a little ahead) wait in a
    # bounded table and are retried when what they wait for arrives. Worst case 64 MiB on the 1 GB target; a
    # source over its share loses its own oldest first (per-peer and system scopes, like libp2p's resource
    # manager), then the whole table loses its oldest. An evicted record comes back by anti-entropy.
    max_deferred_records: int = 10_000
    max_deferred_bytes: int = 64 * MIB
    max_deferred_per_source: int = 1_000
    # Applicants' own profiles held in quarantine (newest per applicant), oldest evicted first. A hub holds only
    # the applicants that contacted it directly, so 1,000 is years of applications for a regional association
    # (Wales has ~700 co-operatives in all); at most 16 MiB.
    max_quarantine_profiles: int = 1_000
    max_quarantine_bytes: int = 16 * MIB
    # The refusals log: counters per (source, reason) for at most this many distinct sources (the rest are
    # counted under "other"), plus a ring of the last refusals with their detail: counts survive a flood and
    # the detail is sampled, as with syslog's "last message repeated N times".
    refused_sources: int = 64
    refused_examples: int = 100
    # --- HTTP bounds (docs/protocol.md "HTTP bounds"; enforced by hub/bounds.py, each proved by
    # tests/hub/test_bounds.py). Every route, /api, /fed and the pages alike. ---

    # Open connections in all and from one client address (an IPv6 /64 counts as one address). nginx's
    # worker_connections defaults to 512; its limit_conn is usually set to 10-20 per address, and a peer or the
    # CLI needs a handful. Over the total, the hub closes an idle connection of the address holding the most, else
    # the newcomer, at once: it never stops accepting. Lowered at start to fit under the open-file limit.
    http_max_connections: int = 512
    http_max_connections_per_address: int = 32
    # A request's line and headers must arrive within this long of the connection opening or of the previous
    # reply, else the connection is closed (slowloris). Apache's mod_reqtimeout allows header=20 s; nginx's
    # client_header_timeout is 60 s.
    http_header_timeout_ms: int = 20 * SECONDS
    # A request body must arrive within this long plus one second per http_body_min_rate_bytes_per_s received,
    # else 408 (Apache's mod_reqtimeout: body=20, MinRate=500 bytes/s; ours is for 8 MiB blobs on a slow line).
    http_body_timeout_ms: int = 20 * SECONDS
    http_body_min_rate_bytes_per_s: int = 16 * KIB
    # The request target (URL) and each header's value, in bytes, and the number of header lines: nginx's
    # large_client_header_buffers are 8 KiB (aiohttp's max_line_size is 8,190); Apache's LimitRequestFields is 100.
    http_max_header_line_bytes: int = 8190
    http_max_headers: int = 100
    # Requests being handled at once; beyond it 503 with Retry-After. Apache's MaxRequestWorkers defaults to 256.
    http_max_requests_in_flight: int = 256
    # Request body bytes held at once over all requests (a declared length is reserved before it is read, a
    # chunked body its route's limit), like libp2p's resource manager's memory scope: 60 slow 7 MiB uploads
    # cannot hold 432 MiB. Beyond it 503 with Retry-After.
    http_max_inflight_body_bytes: int = 64 * MIB
    # A token bucket per client address for requests without the API token: up to http_rate_burst at once,
    # refilled at http_rate_per_s; beyond it 429 with Retry-After. nginx's limit_req takes rate= and burst= the
    # same way; a peer syncing every 5 s and pushing new records needs a few a second.
    http_rate_burst: int = 200
    http_rate_per_s: int = 50
    # Nesting depth of a JSON request body (objects and arrays). A publish body needs max_depth + 1; serde_json
    # stops at 128 and Jackson at 500 (StreamReadConstraints); Python's json would hit a RecursionError.
    max_json_depth: int = 32
    # --- peer sessions (docs/protocol.md §8.1, PRODUCT.md §3.1) ---
    # Announced ids are coalesced for this long (or until push_batch of them) before one announce frame goes
    # out: a burst of 100 records becomes one frame per peer, not 100. Nagle's algorithm waits up to 200 ms;
    # gossipsub's heartbeat is 1 s; 5 ms is below any human notice.
    session_batch_ms: int = 5 * MS
    # Request bytes one session may have sent and not yet had answered; more waits (back-pressure). Two
    # maximal bodies: a catch-up page in flight while the next is asked for.
    session_inflight_bytes: int = 16 * MIB
    # Requests from one peer handled at once; the next frame is not read until one finishes, so a peer that
    # floods waits on its own socket (TCP back-pressure), like HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS.
    session_concurrency: int = 4
    # Per-peer quotas on what it sends us: records per second (a catch-up of 100k records at this rate takes
    # 20 s) and frame bytes per second (about 10× a burst of 100 × 1 KB guides). Over quota, the driver waits
    # before reading the peer's next frame; records over the records quota are refused as rate-limited (never
    # scored). Nostr relays such as strfry rate-limit per connection the same way.
    peer_records_per_s: int = 5_000
    peer_bytes_per_s: int = 16 * MIB
    # Sessions a hub accepts at once (members and applicants together), and how long a handshake may take.
    # An association of hundreds of hubs with a fan-out of 4 needs a few dozen.
    max_sessions: int = 256
    session_handshake_ms: int = 10 * SECONDS
    # Of those, sessions of applicants (proven keys that are not eligible) at once: anyone can make a key, so
    # strangers must never fill max_sessions and keep members out. Joining hubs are few at a time.
    max_applicant_sessions: int = 32


DEFAULT_LIMITS = Limits()


def limits_from_mapping(values: Mapping[str, Any], base: Limits = DEFAULT_LIMITS) -> Limits:
    """Return ``base`` with the integer fields in ``values`` replaced.

    Raises:
        ValueError: an unknown name or a value that is not a positive integer.
    """
    known = {f.name for f in dataclasses.fields(Limits)}
    changes: dict[str, int] = {}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"unknown limit {name!r}; known limits: {', '.join(sorted(known))}")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"limit {name} must be a non-negative integer, got {value!r}")
        changes[name] = value
    return dataclasses.replace(base, **changes)
