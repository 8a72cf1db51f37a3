"""Reads: the directory search and the views of one hub, guide, offer or mark.

Every function takes a read connection (inside one read transaction, so a view sees one snapshot) and
``now_ms`` where the answer depends on time. The rules are protocol's pure functions — offer_tally,
attestation_status, mark_status, guide_chain, membership — applied to the few stored records a view needs, so
the hub never disagrees with what any other implementation computes from the same records.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from protocol import (
    Membership,
    Record,
    attestation_status,
    current_guides,
    format_hub_id,
    guide_chain,
    mark_status,
    membership,
    offer_tally,
    revoked_ids,
)
from protocol.charter import terms_at
from protocol.jsonview import iso_ms, record_to_json

from .derive import load_charter, load_record, load_records
from .pagedata import MarksCache, SearchCache, hub_id_text, in_marks, marks_brief, offer_statuses, revocations_of

__all__ = [
    "DirectoryQuery", "SearchCache", "TOTAL_CAP", "Total", "attachment", "counts", "fts_query", "get_membership",
    "guide_view", "hub_view", "mark_check", "marks_view", "member_peer_url_hubs", "member_peer_urls", "offer_view",
    "search", "status",
]

KINDS = ("hub", "guide", "offer")
MAX_QUERY_TOKENS = 16  # bounds the work one search can ask of FTS5
MAX_TOKEN_CHARS = 64
MAX_LIMIT = 200
VIEW_LIST_LIMIT = 100  # guides and offers listed on a hub's page, newest first (totals are given too)
# bm25 column weights: title, summary, body, extra (services, tags, category), regions.
_BM25 = "bm25(directory_fts, 10.0, 4.0, 1.0, 3.0, 2.0)"
_TOKEN = re.compile(r"\w+")
# A text query that matches more entries than this ranks only the newest this many by bm25 (or as many as the
# page asked for needs): ranking costs 5–10 µs a match, and a one-word query over a million records can match
# 300,000 (docs/perf/hub.md). 1,000 as the count's cap: "1,000+ results, the best of the newest 1,000 first"
# (issue 13: 5,000 cost 25 ms a common word at 100k records under load, 1,000 cost 5–12 ms).
RANK_WINDOW = 1_000
# With at least this many matches and no text, walking entries newest-first and testing each finds a page
# sooner than fetching every match through an index and sorting them all.
SCAN_PLAN_MIN = 1_000
# Totals are counted up to this many matches (or to the end of the page asked for, if further): a common word
# matches hundreds of thousands of entries at 1M records, and counting them all was most of what the slowest
# searches cost (docs/performance.md, issue 13). Beyond it a total says "at least" (Total.at_least).
TOTAL_CAP = 1_000


class Total(int):
    """A search's number of matches; ``at_least``: counting stopped there, and there are more.

    An int, so that code which only shows or compares the number keeps working; JSON writes it as a number.
    """

    at_least: bool

    def __new__(cls, value: int, at_least: bool = False) -> Total:
        out = super().__new__(cls, value)
        out.at_least = at_least
        return out


@dataclass(frozen=True)
class DirectoryQuery:
    q: str = ""  # free text (FTS5; bad FTS syntax is treated as plain words, never an error)
    kind: str | None = None  # "hub" | "guide" | "offer"
    region: str | None = None
    service: str | None = None  # a substring of a hub's service names or categories, or an offer's category
    mark: str | None = None  # scheme id: only hubs holding a VALID mark now (and guides/offers by them)
    open: bool = False  # only offers that are open (not closed, deadline not passed)
    reviewed: bool = False  # only guide versions that are association-reviewed (hub.governance)
    limit: int = 20
    offset: int = 0


def fts_query(text: str) -> str:
    """Turn arbitrary user text into a safe FTS5 query: every word quoted, all words required.

    Quoting makes FTS5 operators (AND, OR, NOT, NEAR, ``*``, ``^``, column filters, parentheses) plain words,
    so no input is a syntax error. Returns "" when the text has no words.
    """
    words = _TOKEN.findall(text)[:MAX_QUERY_TOKENS]
    return " ".join(f'"{w[:MAX_TOKEN_CHARS]}"' for w in words)


# -- search ------------------------------------------------------------------------------------------------


def _filters(query: DirectoryQuery, now_ms: int, *, scan: bool = False) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters. ``scan``: write the terms so that SQLite cannot drive the query from
    their indexes (a unary ``+``), and walks entries in the order asked for instead, testing each.
    """
    plus = "+" if scan else ""
    # With a region, its index drives (a region holds a small share of the entries); SQLite would otherwise
    # walk every entry of the kind and test the region for each (5x slower counting open offers + region).
    k = "+" if query.region and not scan and query.kind != "hub" else ""  # hubs are few: kind drives then
    where: list[str] = []
    params: list[Any] = []
    if query.kind:
        where.append(f"{k}d.kind = ?")
        params.append(query.kind)
    if query.region:
        where.append(f"{plus}d.rid IN (SELECT rid FROM directory_region WHERE region = ?)")
        params.append(query.region.strip().lower())
    if query.service:
        # A substring of a hub's service names and categories, or an offer's category (guides have none).
        if scan:  # many matches: tested per entry while walking newest first
            where.append(f"{k}d.kind IN ('hub', 'offer') AND instr(d.match, ?) > 0")
        else:  # found in the covering index (migration 6), not by reading every hub's and offer's row
            where.append("d.rid IN (SELECT rid FROM directory INDEXED BY directory_kind_match "
                         "WHERE kind IN ('hub', 'offer') AND instr(match, ?) > 0)")
        params.append(query.service.strip().lower())
    if query.mark:
        where.append(f"{plus}d.author IN (SELECT subject FROM attestations WHERE scheme = ? "
                     "AND authorised = 1 AND valid_from <= ? AND valid_until > ? "
                     "AND (revoked_ms IS NULL OR revoked_ms > ?))")
        params += [query.mark, now_ms, now_ms, now_ms]
    if query.open:
        # Tested per entry (a primary-key probe), not materialised: most offers may be open.
        where.append(f"{k}d.kind = 'offer' AND EXISTS (SELECT 1 FROM offers o WHERE o.id = d.key AND "
                     "o.close_id IS NULL AND o.revoked = 0 AND o.deadline >= ?)")
        params.append(now_ms)
    if query.reviewed:
        where.append(f"{k}d.kind = 'guide' AND d.key IN (SELECT guide FROM reviewed_guides)")
    return where, params


def _where(terms: list[str]) -> str:
    return f" WHERE {' AND '.join(terms)}" if terms else ""


def search(conn: sqlite3.Connection, query: DirectoryQuery, now_ms: int,
           cache: SearchCache | None = None) -> tuple[list[dict[str, Any]], int]:
    """Directory entries matching ``query``, ranked by bm25 when there is text, else newest first; and the
    total number of matches. ``cache``: reuse the matches of an identical earlier search while nothing new
    was stored (:class:`SearchCache`).

    Raises:
        ValueError: an unknown kind.
    """
    if query.kind is not None and query.kind not in KINDS:
        raise ValueError(f"unknown kind {query.kind!r}; expected one of {', '.join(KINDS)}")
    key = None
    if cache is not None and not (query.open or query.mark) and query.limit <= cache.max_rows:
        # Keyed on the last stored row and the full-text index's marks (hub/search_index.py): the index is
        # filled after COMMIT, so a page computed while it lagged must not be served once it caught up.
        key = (query, RANK_WINDOW, *conn.execute("SELECT coalesce(max(rowid), 0), (SELECT group_concat(k || v) FROM "
                                                 "fts_state) FROM records").fetchone())
        if (hit := cache.get(key)) is not None:
            total, rids, rows = hit
            page = _Page(conn, now_ms, rows.values(), cache.marks)
            return [page.result(rows[rid]) for rid in rids], total
    text = fts_query(query.q)
    if text and query.region and (words := _TOKEN.findall(query.region)[:MAX_QUERY_TOKENS]):
        # Let full-text narrow by region too (a doclist merge, not a probe per match); the exact region
        # filter below still decides, since a phrase can also match part of a longer region name.
        text = f'({text}) AND regions : "{" ".join(w[:MAX_TOKEN_CHARS] for w in words)}"'
    limit, offset = max(0, min(query.limit, MAX_LIMIT)), max(0, query.offset)
    total = _count(conn, query, now_ms, text, max(TOTAL_CAP, offset + limit + 1))
    if text:
        rids = _ranked(conn, query, now_ms, text, limit, offset)
    else:
        rids = _newest(conn, query, now_ms, limit, offset, scan=total.at_least or total >= SCAN_PLAN_MIN)
    rows = _page_rows(conn, rids, text)
    if key is not None and cache is not None:
        cache.put(key, (total, rids, rows))
    page = _Page(conn, now_ms, rows.values(), cache.marks if cache is not None else None)
    return [page.result(rows[rid]) for rid in rids], total


def _count(conn: sqlite3.Connection, query: DirectoryQuery, now_ms: int, text: str, cap: int) -> Total:
    """The number of matches, counted up to ``cap`` (then ``at_least``); kept counts are exact at any size."""
    where, params = _filters(query, now_ms)
    if text:
        if not where:  # every full-text row is a directory entry: no join needed
            sql, params = "SELECT 1 FROM directory_fts WHERE directory_fts MATCH ?", [text]
        else:
            sql = (f"SELECT 1 FROM directory_fts JOIN directory d ON d.rid = directory_fts.rowid"
                   f"{_where(['directory_fts MATCH ?', *where])}")
            params = [text, *params]
    elif query.open and not (query.region or query.service or query.mark or query.reviewed):
        if query.kind not in (None, "offer"):
            return Total(0)
        # Every offer that is not revoked is listed, so open offers are counted from their partial index.
        sql, params = "SELECT 1 FROM offers WHERE close_id IS NULL AND revoked = 0 AND deadline >= ?", [now_ms]
    elif not (query.region or query.service or query.mark or query.reviewed):
        return Total(_count_fast(conn, query))
    else:
        sql = f"SELECT 1 FROM directory d{_where(where)}"
    n = int(conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*params, cap + 1]).fetchone()[0])
    return Total(cap, at_least=True) if n > cap else Total(n)


def _count_fast(conn: sqlite3.Connection, query: DirectoryQuery) -> int:
    """Entries per kind, kept by hub.derive: exact at any size, without a scan."""
    kinds = [query.kind] if query.kind else list(KINDS)
    return int(conn.execute(f"SELECT coalesce(sum(n), 0) FROM directory_counts WHERE kind IN "
                            f"({','.join('?' * len(kinds))})", kinds).fetchone()[0])


def _ranked(conn: sqlite3.Connection, query: DirectoryQuery, now_ms: int, text: str, limit: int,
            offset: int) -> list[int]:
    """The page by bm25 among the newest RANK_WINDOW matches (all of them, when there are fewer; more when the
    page asked for lies beyond)."""
    window = max(RANK_WINDOW, offset + limit)
    where, params = _filters(query, now_ms, scan=True)  # full-text drives; filters are tested per match
    if not where:  # every full-text row is a directory entry: no join (it tripled the cost at 1M records)
        sql = (f"SELECT rid FROM (SELECT rowid AS rid, {_BM25} AS score FROM directory_fts "
               f"WHERE directory_fts MATCH ? ORDER BY rowid DESC LIMIT {window}) "
               "ORDER BY score, rid DESC LIMIT ? OFFSET ?")
        return [rid for (rid,) in conn.execute(sql, [text, limit, offset])]
    sql = (f"SELECT rid FROM (SELECT d.rid AS rid, {_BM25} AS score FROM directory_fts JOIN directory d "
           f"ON d.rid = directory_fts.rowid{_where(['directory_fts MATCH ?', *where])} "
           f"ORDER BY directory_fts.rowid DESC LIMIT {window}) "
           "ORDER BY score, rid DESC LIMIT ? OFFSET ?")
    return [rid for (rid,) in conn.execute(sql, [text, *params, limit, offset])]


def _newest(conn: sqlite3.Connection, query: DirectoryQuery, now_ms: int, limit: int, offset: int, *,
            scan: bool) -> list[int]:
    """The page newest first. Many matches: walk the created_ms index and stop after the page (``scan``);
    few: let SQLite fetch them through the filters' indexes and sort them.
    """
    where, params = _filters(query, now_ms, scan=scan)
    sql = (f"SELECT d.rid FROM directory d{_where(where)} "
           "ORDER BY d.created_ms DESC, d.rid DESC LIMIT ? OFFSET ?")
    return [rid for (rid,) in conn.execute(sql, [*params, limit, offset])]


def _page_rows(conn: sqlite3.Connection, rids: list[int], text: str) -> dict[int, tuple[Any, ...]]:
    if not rids:
        return {}
    marks = ",".join("?" * len(rids))
    rows = {row[0]: row for row in conn.execute(
        "SELECT rid, kind, key, author, title, summary, regions, services, created_ms, member FROM directory "
        f"WHERE rid IN ({marks})", rids)}
    if text:
        snippets = conn.execute("SELECT rowid, snippet(directory_fts, -1, '', '', '…', 24) "
                                f"FROM directory_fts WHERE directory_fts MATCH ? AND rowid IN ({marks})",
                                [text, *rids])
        for rid, snippet in snippets:
            rows[rid] = rows[rid][:5] + (snippet,) + rows[rid][6:]
    return rows


class _Page:
    """Builds result dicts for one page. What they show of authors (names, marks) and offers (status) is
    fetched for the whole page at once — a few ``IN (…)`` queries, not a few queries per result — and decided
    by the same protocol functions (mark_status, offer_tally) over the same records."""

    def __init__(self, conn: sqlite3.Connection, now_ms: int, rows: Iterable[tuple[Any, ...]],
                 marks: MarksCache | None = None) -> None:
        rows = list(rows)
        self.conn, self.now_ms = conn, now_ms
        authors = sorted({row[3] for row in rows})
        self.names = _names(conn, set(authors))
        self.marks = marks_brief(conn, load_charter(conn), authors, now_ms, marks)
        self.status = offer_statuses(conn, [row[2] for row in rows if row[1] == "offer"], now_ms)
        guides = [row[2] for row in rows if row[1] == "guide"]
        self.reviewed = {guide for (guide,) in conn.execute(  # association-reviewed (hub.governance)
            f"SELECT guide FROM reviewed_guides WHERE guide IN ({in_marks(guides)})", guides)} if guides else set()

    def result(self, row: tuple[Any, ...]) -> dict[str, Any]:
        rid, kind, key, author, title, snippet, regions, services, created_ms, member = row
        return {
            "id": hub_id_text(key) if kind == "hub" else key.hex(),
            "kind": kind,
            "author": hub_id_text(author),
            "author_name": self.names.get(author),
            "title": title,
            "snippet": snippet,
            "regions": json.loads(regions),
            "services": json.loads(services),
            "member": bool(member),
            "marks": self.marks.get(author, []),
            "status": self.status.get(key) if kind == "offer" else None,
            "reviewed": kind == "guide" and key in self.reviewed,
            "created": iso_ms(created_ms),
            "created_ms": created_ms,
        }


def _amendments(conn: sqlite3.Connection) -> list[Any]:
    """The charter amendments in force (hub.governance): marks are authorised under the terms at their
    creation."""
    from .governance import amendments_in_force

    return amendments_in_force(conn)


# -- loading the records a view needs ----------------------------------------------------------------------


def _referring(conn: sqlite3.Connection, record_id: bytes, kind: str) -> list[Record]:
    # INDEXED BY: without statistics SQLite may guess the (kind, author) index, which reads every record of
    # the kind; (ref, kind) reads only the few that point at this record or hub.
    return load_records(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? AND kind = ?",
                        (record_id, kind))


def _attestations(conn: sqlite3.Connection, hub: bytes) -> tuple[list[Record], list[Record]]:
    attestations = _referring(conn, hub, "attestation")
    return attestations, revocations_of(conn, [a.id for a in attestations])


def get_membership(conn: sqlite3.Connection) -> Membership | None:
    """protocol.membership over the stored charter, endorsements and their revocations."""
    charter = load_charter(conn)
    if charter is None:
        return None
    endorsements = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'endorsement'")
    from .governance import current_terms  # under the newest terms: amendments may change the rule

    return membership(charter, endorsements, revocations_of(conn, [e.id for e in endorsements]),
                      terms=current_terms(conn, charter))


def member_peer_urls(conn: sqlite3.Connection) -> list[str]:
    """The peer URLs in current members' current profiles, by hub id (federation's discovery, PRODUCT.md §3).

    One join over the derived tables: building each member's page (``hub_view``) for this cost seconds at 1M
    records (docs/performance.md), and discovery runs after every new profile.
    """
    return [url for _hub, url in _member_profile_urls(conn)]


def member_peer_url_hubs(conn: sqlite3.Connection) -> dict[str, bytes]:
    """Peer URL (without a trailing "/") -> the member whose current profile names it, for the peer views
    (hub.peer_status): a member this hub cannot reach at its URL but that dials in shows as one row. A URL
    that two members' profiles name is left out: whose it is is not known."""
    owners: dict[str, set[bytes]] = {}
    for hub, url in _member_profile_urls(conn):
        owners.setdefault(url.rstrip("/"), set()).add(hub)
    return {url: next(iter(hubs)) for url, hubs in owners.items() if len(hubs) == 1}


def _member_profile_urls(conn: sqlite3.Connection) -> list[tuple[bytes, str]]:
    profiles = load_records(conn, "SELECT r.raw, r.id FROM members m JOIN profiles p ON p.hub = m.hub "
                                  "JOIN records r ON r.id = p.id ORDER BY m.hub")
    return [(profile.author, url) for profile in profiles for url in profile.body.get("peer_urls", [])
            if isinstance(url, str)]


def _names(conn: sqlite3.Connection, hubs: set[bytes]) -> dict[bytes, str]:
    wanted = sorted(hubs)
    out: dict[bytes, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        out.update(conn.execute(f"SELECT hub, name FROM profiles WHERE hub IN ({in_marks(chunk)})", chunk).fetchall())
    return out


# -- views -------------------------------------------------------------------------------------------------


def hub_view(conn: sqlite3.Connection, hub: bytes, now_ms: int,
             marks: MarksCache | None = None) -> dict[str, Any] | None:
    """A hub's page: profile, membership, endorsers, marks, current guides and offers; None if unknown."""
    row = conn.execute("SELECT id FROM profiles WHERE hub = ?", (hub,)).fetchone()
    profile = load_record(conn, row[0]) if row else None
    m = get_membership(conn)
    known = profile is not None or (m is not None and (hub in m.members or hub in m.endorsers))
    if not known and conn.execute("SELECT 1 FROM records WHERE ref = ? LIMIT 1", (hub,)).fetchone() is None:
        return None
    # Entries are joined through records (rowid = directory.rid); the newest VIEW_LIST_LIMIT of each.
    guides = conn.execute("SELECT g.id, d.title, g.created_ms FROM guides g JOIN records r ON r.id = g.id "
                          "JOIN directory d ON d.rid = r.rowid WHERE g.author = ? AND g.superseded = 0 "
                          "AND g.revoked = 0 ORDER BY g.created_ms DESC LIMIT ?",
                          (hub, VIEW_LIST_LIMIT)).fetchall()
    offers = conn.execute("SELECT o.id, d.title, o.deadline FROM offers o JOIN records r ON r.id = o.id "
                          "JOIN directory d ON d.rid = r.rowid WHERE o.author = ? AND o.revoked = 0 "
                          "ORDER BY o.created_ms DESC LIMIT ?", (hub, VIEW_LIST_LIMIT)).fetchall()
    statuses = offer_statuses(conn, [oid for oid, _, _ in offers], now_ms)
    counted = conn.execute("SELECT (SELECT count(*) FROM guides WHERE author = ? AND superseded = 0 AND "
                           "revoked = 0), (SELECT count(*) FROM offers WHERE author = ? AND revoked = 0)",
                           (hub, hub)).fetchone()
    return {
        "id": format_hub_id(hub),
        "hub": format_hub_id(hub),
        "name": profile.body["name"] if profile else None,
        "profile": record_to_json(profile) if profile else None,
        "member": m is not None and m.is_member(hub),
        "founder": m is not None and hub in m.founders,
        # Its class and vote weight under the newest terms (docs/protocol.md §6.1); None for a non-member.
        "class": m.class_of(hub) if m is not None else None,
        "weight": m.weight(hub) if m is not None and m.is_member(hub) else None,
        "endorsers": sorted(format_hub_id(h) for h in (m.endorsers.get(hub, frozenset()) if m else ())),
        "marks": marks_view(conn, hub, now_ms, marks),
        "guides": [{"id": gid.hex(), "title": title, "created": iso_ms(ms)} for gid, title, ms in guides],
        "offers": [{"id": oid.hex(), "title": title, "deadline": iso_ms(deadline), "status": statuses.get(oid)}
                   for oid, title, deadline in offers],
        "guides_total": counted[0],
        "offers_total": counted[1],
    }


def guide_view(conn: sqlite3.Connection, guide_id: bytes) -> dict[str, Any] | None:
    """A guide as JSON with its state (current / superseded / revoked), version chain and revocation."""
    guide = load_record(conn, guide_id)
    if guide is None or guide.kind != "guide":
        return None
    # Only the records that bear on this guide: its chain back (followed by supersedes), the guides that
    # supersede it, and revocations of either; protocol's functions over these answer as over all guides.
    chain = _chain_records(conn, guide)
    newer = load_records(conn, "SELECT raw, id FROM records WHERE ref = ? AND kind = 'guide'", (guide.id,))
    mine = [g for g in chain + newer if g.author == guide.author]
    revocations = revocations_of(conn, [g.id for g in mine])
    revocation = revoked_ids(revocations, {g.id: g for g in mine}).get(guide.id)
    current = {g.id for g in current_guides(mine, revocations)}
    newer = [g for g in newer if g.author == guide.author]
    state = "current" if guide.id in current else "revoked" if revocation is not None else "superseded"
    return {
        **record_to_json(guide),
        "state": state,
        "revoked": revocation is not None,
        "revocation": record_to_json(revocation) if revocation is not None else None,
        "versions": [{"id": g.id_hex, "title": g.body["title"], "created": iso_ms(g.created_ms)}
                     for g in guide_chain(guide, chain)],
        "superseded_by": [g.id_hex for g in sorted(newer, key=lambda g: (g.created_ms, g.id))],
        "review": _reviews_of(conn, guide),
    }


def _reviews_of(conn: sqlite3.Connection, guide: Record) -> dict[str, Any]:
    from .proposals import guide_reviews  # association review (hub.proposals)

    return guide_reviews(conn, guide)


def _chain_records(conn: sqlite3.Connection, guide: Record) -> list[Record]:
    chain, seen, current = [guide], {guide.id}, guide
    while (earlier_id := current.body.get("supersedes")) is not None and earlier_id not in seen:
        earlier = load_record(conn, earlier_id)
        if earlier is None or earlier.kind != "guide":
            break
        chain.append(earlier)
        seen.add(earlier.id)
        current = earlier
    return chain


def offer_view(conn: sqlite3.Connection, offer_id: bytes, now_ms: int) -> dict[str, Any] | None:
    """An offer as JSON with its tally (protocol.offer_tally over its stored pledges, closes, revocations)."""
    offer = load_record(conn, offer_id)
    if offer is None or offer.kind != "offer":
        return None
    members = frozenset(hub for (hub,) in conn.execute("SELECT hub FROM members"))
    pledges, closes = _referring(conn, offer_id, "pledge"), _referring(conn, offer_id, "offer-close")
    tally = offer_tally(offer, pledges, closes, _referring(conn, offer_id, "revocation"), members, now_ms)
    names = _names(conn, {line.hub for line in tally.pledges})
    return {
        **record_to_json(offer),
        "status": tally.status,
        "tally": {
            "status": tally.status,
            "total": tally.total,
            "tier": None if tally.tier is None else {"min_quantity": tally.tier[0],
                                                     "unit_price": tally.tier[1]},
            "proceeds": tally.proceeds,
            "close_id": tally.close_id.hex() if tally.close_id else None,
            "pledges": [{"hub": format_hub_id(line.hub), "name": names.get(line.hub),
                         "quantity": line.quantity, "pledge_id": line.pledge_id.hex(),
                         "created": iso_ms(line.created_ms)}
                        for line in tally.pledges],
        },
    }


def marks_view(conn: sqlite3.Connection, hub: bytes, now_ms: int,
               cache: MarksCache | None = None) -> list[dict[str, Any]]:
    """Every attestation about ``hub``, newest first, with its status at ``now_ms`` and the reason; through
    ``cache`` when given (pagedata.MarksCache: the same answer)."""
    if cache is not None:
        return cache.answer(conn, ("view", hub), hub, now_ms, lambda: marks_view(conn, hub, now_ms))
    charter = load_charter(conn)
    attestations, revocations = _attestations(conn, hub)
    if charter is None:
        return []
    names = _names(conn, {a.author for a in attestations})
    amendments = _amendments(conn)
    out = []
    for a in sorted(attestations, key=lambda a: (-a.created_ms, a.id)):
        s = attestation_status(a, charter, revocations, now_ms, amendments)
        out.append({"id": a.id_hex, "scheme": a.body["scheme"], "level": a.body["level"],
                    "author": a.author_id, "author_name": names.get(a.author),
                    "valid_from": iso_ms(a.body["valid_from"]), "valid_until": iso_ms(a.body["valid_until"]),
                    "status": s.status, "reason": s.reason,
                    "revocation": s.revocation.id_hex if s.revocation is not None else None})
    return out


def mark_check(conn: sqlite3.Connection, hub: bytes, scheme: str, now_ms: int,
               cache: MarksCache | None = None) -> dict[str, Any]:
    """Whether ``hub`` holds a valid ``scheme`` mark now, and why (protocol.mark_status); through ``cache``
    when given (pagedata.MarksCache: the same answer)."""
    if cache is not None:
        return cache.answer(conn, ("check", hub, scheme), hub, now_ms, lambda: mark_check(conn, hub, scheme, now_ms))
    charter = load_charter(conn)
    if charter is None:
        return {"hub": format_hub_id(hub), "scheme": scheme, "status": "none",
                "reason": "this hub has no charter yet", "attestation": None, "revocation": None}
    schemes = terms_at(charter, _amendments(conn), now_ms).schemes
    if scheme not in schemes:
        return {"hub": format_hub_id(hub), "scheme": scheme, "status": "unknown-scheme",
                "reason": f"the charter has no scheme {scheme!r}; its schemes: {', '.join(sorted(schemes)) or 'none'}",
                "attestation": None, "revocation": None}
    attestations, revocations = _attestations(conn, hub)
    s = mark_status(hub, scheme, attestations, charter, revocations, now_ms, _amendments(conn))
    return {"hub": format_hub_id(hub), "scheme": scheme, "status": s.status, "reason": s.reason,
            "attestation": record_to_json(s.attestation) if s.attestation is not None else None,
            "revocation": record_to_json(s.revocation) if s.revocation is not None else None}


# -- health ------------------------------------------------------------------------------------------------


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Records per kind, plus "records", "members", "refused" (refusals counted so far), and what the storage
    rule holds besides records: "deferred", "quarantined" and "eligible" (docs/protocol.md §2.3)."""
    out = {kind: n for kind, n in conn.execute("SELECT kind, n FROM kind_counts")}
    out["records"] = sum(out.values())
    out["members"] = conn.execute("SELECT count(*) FROM members").fetchone()[0]
    out["refused"] = conn.execute("SELECT coalesce(sum(count), 0) FROM refused").fetchone()[0]
    out["deferred"] = conn.execute("SELECT count(*) FROM deferred").fetchone()[0]
    out["quarantined"] = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    out["eligible"] = conn.execute("SELECT count(*) FROM eligible").fetchone()[0]
    return out


def status(conn: sqlite3.Connection, hub: bytes, now_ms: int) -> dict[str, Any]:
    """The fields of ``coophub status --json`` (PRODUCT.md §4) and a little more."""
    charter = load_charter(conn)
    c = counts(conn)
    peers = [json.loads(data) for (data,) in conn.execute("SELECT data FROM peers")]
    last_sync = max((p.get("last_sync_ms") or 0 for p in peers), default=0)
    member = conn.execute("SELECT 1 FROM members WHERE hub = ?", (hub,)).fetchone() is not None
    return {
        "hub_id": format_hub_id(hub),
        "association_id": charter.id_hex if charter is not None else None,
        "association": charter.body["name"] if charter is not None else None,
        "member": member,
        "records": c["records"],
        "members": c["members"],
        "peers": len(peers),
        "last_sync": iso_ms(last_sync) if last_sync else None,
        "refused": c["refused"],
        "counts": c,
        "now": iso_ms(now_ms),
    }


def attachment(conn: sqlite3.Connection, digest: bytes) -> dict[str, Any] | None:
    """The attachment of a stored guide whose hash is ``digest`` — its body fields (name, media_type, size,
    hash) plus "author" and "guide" (ids) of the oldest such guide — or None when no stored guide names it.

    ``instr`` finds the 32 hash bytes inside the guides' canonical bytes without decoding every guide; only
    candidates are decoded, to check that the bytes really are an attachment's hash.
    """
    candidates = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'guide' AND instr(raw, ?) > 0 "
                                    "ORDER BY created_ms, id LIMIT 20", (digest,))
    for record in candidates:
        for item in record.body.get("attachments") or []:
            if item.get("hash") == digest:
                return {**item, "author": record.author, "guide": record.id}
    return None
