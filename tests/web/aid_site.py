"""The sample association of tests/web/site.py plus mutual aid, for the mutual-aid page tests and screenshots:
time-credit payments (booked, pending, one past the payer's limit) and a solidarity fund with members, a member
giving notice, an approved claim partly paid and an open claim."""

from __future__ import annotations

from pathlib import Path

from tests.hub.factory import HOUR, raws
from tests.web.site import XSS, Site, build


def build_aid(tmp: Path, *, xss: bool = True) -> Site:
    """``site.build(tmp)`` plus mutual-aid records; ``xss`` puts script in a memo and a claim's reason."""
    s = build(tmp)
    a = s.a
    f0, f1, f2 = a.founders
    tag = f" {XSS}" if xss else ""
    extra = []
    cover = a.pay(f1, f0, 6 * 60, "Cover for two night shifts")
    training = a.pay(f0, f2, 90, f"Moving and handling training{tag}")
    pending = a.pay(f2, f1, 30, "DBS check advice")
    over = a.pay(f2, f0, 45 * 60, "A payment past the limit")
    extra += [cover, a.book(f0, cover), training, a.book(f2, training), pending, over, a.book(f0, over)]
    fund = a.fund(f0, "Sick pay circle", contribution=5000, approvals=1, notice_days=30)
    extra += [fund, a.fund_join(f1, fund), a.fund_join(f2, fund)]
    claim = a.claim(f1, fund, 6000, "Two carers off sick for a month")
    extra += [claim, a.approve(f2, claim), a.fund_pay(f0, claim, 3000)]
    open_claim = a.claim(f2, fund, 1000, f"New boiler for the day centre{tag}")
    extra += [open_claim, a.fund_leave(f2, fund)]
    results = s.store.ingest(raws(extra), now_ms=a.now + HOUR)
    assert all(r.status == "accepted" for r in results), results
    s.now = a.now + 2 * HOUR
    s.extra.update({"fund": fund, "claim": claim, "over": over, "pending": pending})
    return s
