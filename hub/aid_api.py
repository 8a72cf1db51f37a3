"""Mutual aid on a running hub: the JSON API (docs/api.md) and the booking of payments made to this hub.

    GET /api/v1/credit              every hub's time-credit balance, the limit and the ledger's totals
    GET /api/v1/credit/{hub_id}     one hub's balance, limit, pending payments, flag and history
    GET /api/v1/funds               the solidarity funds
    GET /api/v1/funds/{id}          one fund: members, claims with approvals, shares, payments, what is owed

Publishing (a payment, a receipt, a fund, a join, a claim, an approval, a payment toward a claim) goes through
``POST /api/v1/publish`` like every record, with hub.aid_checks' local checks.

**Booking.** A time-credit payment counts once its payee books it with a ``credit-receipt`` (docs/protocol.md
§6.6). A running hub books every payment made to it as soon as it holds one — pushed, pulled in sync or
imported — and once at start for those that arrived while it was down, so a volunteer never has to; the receipt
is signed with the hub's key and gossiped like anything it publishes. ``coophub credit accept`` does the same
from the command line for a hub that is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hub.app import HOME_KEY, NOW_KEY, STORE_KEY, ApiError, hub_param, json_response, record_id_param
from hub.home import Home
from hub.store import IngestResult, Store
from protocol import Record, build_record

__all__ = ["BOOK_BATCH", "BOOKER_KEY", "Booker", "book_pending", "setup"]

log = logging.getLogger("coophub.credit")

#: Receipts signed per ingest transaction while booking (a hub that was down for a while catches up in batches).
BOOK_BATCH = 100


def receipts_for(home: Home, store: Store, association: bytes, now_ms: int, limit: int) -> list[Record]:
    """Signed receipts for up to ``limit`` payments to this hub that it has not booked yet."""
    ids = store.unbooked_payments(home.key.public, limit)
    return [build_record(home.key, association, "credit-receipt", {"payment": pid}, now_ms, limits=store.limits)
            for pid in ids]


async def book_pending(home: Home, store: Store, now_ms: Callable[[], int]) -> list[IngestResult]:
    """Book every payment to this hub that no receipt of its books yet, in batches; returns the results.

    Ingests through ``ingest_async`` so that store listeners (federation's push) run in the event loop.

    Raises:
        RuntimeError: the store is closed.
    """
    association = store.association_id()
    results: list[IngestResult] = []
    # A hub that is not a member could not have its receipts stored: it books nothing (and is never paid by a
    # member's own hub, whose local check refuses paying a non-member).
    if association is None or not await store.read(store.is_member, home.key.public):
        return results
    while receipts := await store.read(receipts_for, home, store, association, now_ms(), BOOK_BATCH):
        batch = await store.ingest_async([r.raw for r in receipts], now_ms=now_ms(), source="local")
        results += batch
        if not any(r.status == "accepted" for r in batch):
            break  # nothing moved (should not happen): never loop on the same payments
    return results


class Booker:
    """Books payments to this hub whenever an ingest accepted something (a store listener wakes it)."""

    def __init__(self, home: Home, store: Store, now_ms: Callable[[], int]) -> None:
        self.home, self.store, self.now_ms = home, store, now_ms
        self.booked = 0
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def on_ingested(self, results: list[IngestResult], source: str) -> None:
        if any(r.status == "accepted" for r in results):
            self._loop.call_soon_threadsafe(self._wake.set)  # ingest may run in another thread

    async def run(self) -> None:
        self._wake.set()  # once at start: payments that arrived while the hub was down
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                results = await book_pending(self.home, self.store, self.now_ms)
            except RuntimeError:  # the store closed under us: the hub is stopping
                return
            except Exception:  # a bug must not stop the hub; the next ingest retries
                log.exception("booking time-credit payments failed")
                continue
            self.booked += sum(r.status == "accepted" for r in results)


BOOKER_KEY: web.AppKey[Booker] = web.AppKey("credit_booker", Booker)


async def _booking(app: web.Application) -> AsyncIterator[None]:
    booker = Booker(app[HOME_KEY], app[STORE_KEY], app[NOW_KEY])
    app[BOOKER_KEY] = booker
    app[STORE_KEY].add_listener(booker.on_ingested)
    task = asyncio.create_task(booker.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- handlers ----------------------------------------------------------------------------------------------


def _no_params(request: web.Request) -> None:
    if request.query:
        raise ApiError(400, "invalid", f"unknown parameter {sorted(request.query)[0]!r}; this route takes none")


async def get_credit(request: web.Request) -> web.Response:
    _no_params(request)
    store = request.app[STORE_KEY]
    return json_response(await store.read(store.credit_accounts, request.app[NOW_KEY]()))


async def get_credit_account(request: web.Request) -> web.Response:
    _no_params(request)
    hub = hub_param(request.match_info["hub_id"])
    store = request.app[STORE_KEY]
    view = await store.read(store.credit_account, hub, request.app[NOW_KEY]())
    if view is None:
        raise ApiError(404, "not-found", f"no hub {request.match_info['hub_id']} in this hub's directory")
    return json_response(view)


async def get_funds(request: web.Request) -> web.Response:
    _no_params(request)
    store = request.app[STORE_KEY]
    return json_response({"funds": await store.read(store.fund_list, request.app[NOW_KEY]())})


async def get_fund(request: web.Request) -> web.Response:
    _no_params(request)
    fund_id = record_id_param(request.match_info["id"])
    store = request.app[STORE_KEY]
    view = await store.read(store.fund_view, fund_id, request.app[NOW_KEY]())
    if view is None:
        raise ApiError(404, "not-found", f"no fund {fund_id.hex()} on this hub")
    return json_response(view)


def setup(app: web.Application) -> None:
    """Add the mutual-aid routes and the booking of payments to this hub (``hub.app.make_app`` calls it)."""
    r = app.router
    r.add_get("/api/v1/credit", get_credit)
    r.add_get("/api/v1/credit/{hub_id}", get_credit_account)
    r.add_get("/api/v1/funds", get_funds)
    r.add_get("/api/v1/funds/{id}", get_fund)
    app.cleanup_ctx.append(_booking)
