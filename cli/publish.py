"""Publishing commands: charter, profile, guide, offer, pledge, close-offer, attest, endorse, revoke.

Each builds one record body from its arguments, publishes it through :func:`cli.common.publish` and prints
the new record's id (``--json``: ``{"id": ...}``).
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path
from typing import Any

from hub.home import Home
from hub.i18n import gettext as _

from .common import (
    check_url,
    home_from,
    now_ms,
    open_store,
    parse_hub,
    parse_record_id,
    parse_tier,
    parse_when,
    print_id,
    publish,
    put_blob,
)
from .output import CliError, emit, emit_json

__all__ = ["add_parsers"]

_SUMMARY_CHARS = 1000


# -- charter -------------------------------------------------------------------------------------------------


def _schemes(args: argparse.Namespace) -> list[dict[str, Any]]:
    schemes, assessors = args.scheme or [], args.assessor or []
    if len(schemes) != len(assessors):
        raise CliError(
            _("--scheme and --assessor come in pairs"),
            _("write --scheme SCHEME --assessor HUB_ID for each assessor (repeat the pair for more)"),
            code=2,
        )
    by_id: dict[str, dict[str, Any]] = {}
    for scheme, assessor in zip(schemes, assessors, strict=True):
        scheme_id, _sep, name = scheme.partition(":")
        entry = by_id.setdefault(scheme_id, {"id": scheme_id, "name": name or scheme_id, "assessors": []})
        if name:
            entry["name"] = name
        hub = parse_hub(assessor)
        if hub not in entry["assessors"]:
            entry["assessors"].append(hub)
    return list(by_id.values())


def cmd_charter_create(args: argparse.Namespace) -> int:
    home = home_from(args)
    if home.config.association_id:
        raise CliError(
            _("this hub already belongs to association %(id)s") % {"id": home.config.association_id},
            _("use another --home to found a new association"),
        )
    founders = [home.key.public]
    founder_classes: dict[bytes, str] = {}
    for text in args.founder or []:
        hub_text, _sep, cls = text.partition(":")
        hub = parse_hub(hub_text)
        if hub not in founders:
            founders.append(hub)
        if cls:
            founder_classes[hub] = cls
    needed = args.endorsements_needed if args.endorsements_needed is not None else min(2, len(founders))
    body: dict[str, Any] = {
        "name": args.association,
        "founders": founders,
        "endorsements_needed": needed,
        "schemes": _schemes(args),
    }
    if args.description:
        body["description"] = args.description
    classes = _classes(args.class_ or [])
    if classes:
        body["classes"] = classes
    unknown = sorted({c for c in founder_classes.values() if c not in {k["name"] for k in classes}})
    if unknown:
        raise CliError(f"--founder names class {unknown[0]!r}, which no --class defines",
                       "add --class NAME:WEIGHT for it (e.g. --class council:0)", code=2)
    if founder_classes:
        body["founder_classes"] = [{"hub": h, "class": c} for h, c in founder_classes.items()]
    if args.reviews_needed is not None:
        body["reviews_needed"] = args.reviews_needed
    record_id = publish(home, "charter", body)
    home.config.association_id = record_id
    home.save_config()
    if args.json:
        emit_json({"id": record_id, "association_id": record_id})
    else:
        emit(record_id)
    return 0


def _classes(texts: list[str]) -> list[dict[str, Any]]:
    """``--class NAME:WEIGHT`` options as the charter's classes, in the order given (the first is the
    default class of a member nobody names a class for)."""
    out: list[dict[str, Any]] = []
    for text in texts:
        name, sep, weight = text.rpartition(":")
        if not sep or not name or not weight.isdigit():
            raise CliError(f"--class {text!r} is not NAME:WEIGHT",
                           "write e.g. --class worker-coop:1 --class council:0 (weight 0: a non-voting associate)",
                           code=2)
        if any(c["name"] == name for c in out):
            raise CliError(f"--class {name} is given twice", "name each class once", code=2)
        out.append({"name": name, "weight": int(weight)})
    return out


# -- profile, guide, offer -----------------------------------------------------------------------------------


def _current_profile(home: Home) -> dict[str, Any]:
    """This hub's current profile body in record form, or a fresh one from config.toml."""
    with open_store(home) as store:
        view = store.hub_view(home.key.public, now_ms())
    profile = (view or {}).get("profile")
    if isinstance(profile, dict) and isinstance(profile.get("body"), dict):
        profile = profile["body"]
    if isinstance(profile, dict) and "name" in profile:
        from protocol.jsonview import body_from_json

        return body_from_json("profile", {k: v for k, v in profile.items()})
    regions = [home.config.region] if home.config.region else []
    peer_urls = [home.config.url] if home.config.url else []
    return {"name": home.config.name, "regions": regions, "services": [], "peer_urls": peer_urls}


def _services(texts: list[str]) -> list[dict[str, Any]]:
    services = []
    for text in texts:
        name, sep, category = text.rpartition(":")
        if not sep or not name.strip() or not category.strip():
            raise CliError(
                _("--service %(value)s is not NAME:CATEGORY") % {"value": repr(text)},
                _("write e.g. --service 'Home care:care'"), code=2
            )
        services.append({"name": name.strip(), "category": category.strip()})
    return services


def cmd_publish_profile(args: argparse.Namespace) -> int:
    home = home_from(args)
    body = _current_profile(home)
    for name, value in (
        ("name", args.name),
        ("description", args.description),
        ("legal_form", args.legal_form),
        ("website", args.website),
    ):
        if value is not None:
            body[name] = value
    if args.region:
        body["regions"] = list(dict.fromkeys(args.region))
    if args.service:
        body["services"] = _services(args.service)
    if args.url:
        body["peer_urls"] = list(dict.fromkeys(check_url(u, "--url") for u in args.url))
    if args.stakeholder:
        body["stakeholders"] = list(dict.fromkeys(args.stakeholder))
    contact = {k: v for k, v in (("email", args.email), ("phone", args.phone)) if v}
    if contact:
        body["contact"] = {**body.get("contact", {}), **contact}
    return print_id(args, publish(home, "profile", body))


def _summary(markdown: str) -> str:
    """The first paragraph that is not a heading, as plain text."""
    for block in markdown.split("\n\n"):
        text = " ".join(block.split())
        if text and not text.startswith("#"):
            return text[:_SUMMARY_CHARS]
    return ""


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(_("%(what)s %(path)s is not UTF-8 text") % {"what": what, "path": path},
                       _("save it as UTF-8 Markdown"), code=2) from None
    except OSError as exc:
        problem = _("cannot read %(what)s %(path)s: %(error)s") % {"what": what, "path": path, "error": exc.strerror}
        raise CliError(problem, _("check the path"), code=2) from None


def _attachment(home: Home, path: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(_("cannot read attachment %(path)s: %(error)s") % {"path": path, "error": exc.strerror},
                       _("check the path"), code=2) from None
    limit = home.limits().max_blob_bytes
    if len(data) > limit:
        raise CliError(
            _("attachment %(path)s is %(size)s bytes, over the limit of %(limit)s")
            % {"path": path, "size": len(data), "limit": limit},
            _("attach a smaller file"),
            code=2,
        )
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return {
        "name": Path(path).name[:200],
        "media_type": media_type,
        "size": len(data),
        "hash": bytes.fromhex(put_blob(home, data)),
    }


def cmd_publish_guide(args: argparse.Namespace) -> int:
    home = home_from(args)
    text = _read_text(args.file, "guide")
    summary = args.summary or _summary(text) or args.title
    body: dict[str, Any] = {
        "title": args.title,
        "summary": summary,
        "body": text,
        "license": args.license,
        "tags": list(dict.fromkeys(args.tag or [])),
        "language": args.language,
    }
    if args.supersedes:
        body["supersedes"] = parse_record_id(args.supersedes, "guide id")
    # Check the body before storing any attachment, so that bad input stores nothing.
    from protocol import validate_body

    validate_body("guide", {**body, "attachments": []} if args.attach else body)
    if args.attach:
        body["attachments"] = [_attachment(home, path) for path in args.attach]
    return print_id(args, publish(home, "guide", body))


def cmd_publish_offer(args: argparse.Namespace) -> int:
    home = home_from(args)
    tiers = sorted((parse_tier(t) for t in args.tier), key=lambda tier: tier[0])
    body: dict[str, Any] = {
        "title": args.title,
        "description": args.description or args.title,
        "category": args.category,
        "unit": args.unit,
        "tiers": tiers,
        "currency": args.currency.upper(),
        "min_total": args.min_total,
        "deadline": parse_when(args.deadline, "--deadline", end_of_day=True, timezone=home.config.timezone),
        "regions": list(dict.fromkeys(args.region or [])),
    }
    return print_id(args, publish(home, "offer", body))


# -- procurement ---------------------------------------------------------------------------------------------


def cmd_pledge(args: argparse.Namespace) -> int:
    home = home_from(args)
    body = {"offer": parse_record_id(args.offer_id, "offer id"), "quantity": args.quantity}
    return print_id(args, publish(home, "pledge", body))


def counted_pledges(home: Home, offer_id: bytes, now: int) -> list[bytes]:
    """The ids of the pledges the offer's tally counts now (the set an offer-close commits to).

    Raises:
        CliError: no such offer on this hub, another hub's offer, or an offer already closed.
    """
    with open_store(home) as store:
        view = store.offer_view(offer_id, now)
    if view is None:
        raise CliError(
            _("no offer %(id)s on this hub") % {"id": offer_id.hex()},
            _("check the id with `coophub search --kind offer`"),
        )
    if view["author"] != home.hub_id:
        raise CliError(_("only the offer's author can close it"),
                       _("it was published by %(author)s") % {"author": view["author"]})
    tally = view["tally"]
    if tally.get("close_id"):
        closed = _("offer %(id)s is already closed (%(status)s)") % {"id": offer_id.hex(), "status": tally["status"]}
        raise CliError(closed, _("nothing to do"))
    return [bytes.fromhex(line["pledge_id"]) for line in tally["pledges"]]


def cmd_close_offer(args: argparse.Namespace) -> int:
    home = home_from(args)
    offer_id = parse_record_id(args.offer_id, "offer id")
    pledges = counted_pledges(home, offer_id, now_ms())
    body = {"offer": offer_id, "outcome": args.outcome, "pledges": pledges}
    return print_id(args, publish(home, "offer-close", body), pledges=[p.hex() for p in pledges])


# -- marks and membership ------------------------------------------------------------------------------------


def cmd_attest(args: argparse.Namespace) -> int:
    home = home_from(args)
    zone = home.config.timezone
    valid_from = parse_when(args.valid_from, "--valid-from", timezone=zone) if args.valid_from else now_ms()
    body: dict[str, Any] = {
        "subject": parse_hub(args.hub_id),
        "scheme": args.scheme,
        "level": args.level,
        "valid_from": valid_from,
        "valid_until": parse_when(args.valid_until, "--valid-until", end_of_day=True, timezone=zone),
    }
    if body["valid_until"] <= valid_from:
        raise CliError(_("--valid-until is not after --valid-from"), _("give a later --valid-until"), code=2)
    if args.evidence:
        body["evidence_url"] = check_url(args.evidence, "--evidence")
    if args.evidence_hash:
        body["evidence_hash"] = parse_record_id(args.evidence_hash, "SHA-256 hash")
    if args.summary:
        body["summary"] = args.summary
    return print_id(args, publish(home, "attestation", with_credential(home, body)))


def with_credential(home: Home, body: dict[str, Any]) -> dict[str, Any]:
    """The attestation body with this hub's signed Open Badges 3.0 credential (docs/opendata.md)."""
    from hub.opendata.badges import issue_credential

    with open_store(home) as store:
        association = store.association_id() or home.association or bytes(32)
        return issue_credential(store, home.key, association, body, home.config.url)


def cmd_endorse(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {"subject": parse_hub(args.hub_id)}
    if args.statement:
        body["statement"] = args.statement
    if args.class_:
        body["class"] = args.class_
    return print_id(args, publish(home, "endorsement", body))


def cmd_revoke(args: argparse.Namespace) -> int:
    home = home_from(args)
    body = {"target": parse_record_id(args.record_id), "reason": args.reason}
    return print_id(args, publish(home, "revocation", body))


# -- parsers -------------------------------------------------------------------------------------------------


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _pos_int(text: str) -> int:
    value = _nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the publishing commands on the ``coophub`` subparsers."""
    charter = sub.add_parser(
        "charter",
        help="create the association's charter (founding hub)",
        description="Create the association's charter.",
    )
    charter_sub = charter.add_subparsers(dest="charter_command", required=True, metavar="COMMAND")
    p = charter_sub.add_parser(
        "create",
        parents=[common],
        help="found an association; prints its id",
        description="Found an association: sign its charter and print the association id. "
        "This hub is a founder; --founder adds others.",
    )
    p.add_argument("--association", required=True, metavar="NAME", help="the association's name")
    p.add_argument("--description", help="what the association is for")
    p.add_argument(
        "--founder",
        action="append",
        metavar="HUB_ID[:CLASS]",
        help="a founding member and its class (repeatable; name this hub too to give it a class)",
    )
    p.add_argument(
        "--class",
        dest="class_",
        action="append",
        metavar="NAME:WEIGHT",
        help="a membership class and its vote weight, 0 for non-voting associates (repeatable; the first "
        "is the default class)",
    )
    p.add_argument(
        "--reviews-needed",
        type=_pos_int,
        metavar="K",
        help="approvals from distinct members that make a guide association-reviewed (default 2)",
    )
    p.add_argument(
        "--endorsements-needed",
        type=_pos_int,
        metavar="K",
        help="endorsements from distinct members that admit a new hub (default: 2, or 1 with one founder)",
    )
    p.add_argument(
        "--scheme",
        action="append",
        metavar="SCHEME[:NAME]",
        help="a quality-mark scheme, paired with the --assessor after it (repeatable)",
    )
    p.add_argument(
        "--assessor", action="append", metavar="HUB_ID", help="a hub authorised to assess --scheme"
    )
    p.set_defaults(func=cmd_charter_create)
    from .governance import add_charter_parsers  # `charter terms`

    add_charter_parsers(charter_sub, common)

    publish_p = sub.add_parser(
        "publish",
        help="publish a profile, guide or offer",
        description="Publish a directory entry, a practice guide or a joint offer.",
    )
    publish_sub = publish_p.add_subparsers(dest="publish_command", required=True, metavar="KIND")
    _add_profile(publish_sub, common)
    _add_guide(publish_sub, common)
    _add_offer(publish_sub, common)
    _add_procurement(sub, common)
    _add_marks(sub, common)


def _add_profile(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "profile",
        parents=[common],
        help="publish the co-op's directory entry",
        description="Publish the co-op's directory entry; options not given keep their current values.",
    )
    p.add_argument("--name", help="the co-op's name")
    p.add_argument("--description", help="what the co-op does")
    p.add_argument("--legal-form", help="e.g. 'co-operative society'")
    p.add_argument(
        "--region", action="append", metavar="R", help="a region served (repeatable; replaces all)"
    )
    p.add_argument(
        "--service",
        action="append",
        metavar="NAME:CATEGORY",
        help="a service and its Open Eligibility category, e.g. 'Home care:care' (repeatable)",
    )
    p.add_argument(
        "--stakeholder",
        action="append",
        metavar="CLASS",
        help="a stakeholder class: workers, service-users, volunteers, families, community, ...",
    )
    p.add_argument("--email", help="contact email")
    p.add_argument("--phone", help="contact phone")
    p.add_argument("--website", help="the co-op's website (http/https URL)")
    p.add_argument("--url", action="append", metavar="URL", help="a URL at which this hub accepts peers")
    p.set_defaults(func=cmd_publish_profile)


def _add_guide(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "guide",
        parents=[common],
        help="publish a practice guide from a Markdown file",
        description="Publish a practice guide from a Markdown file, under an open licence.",
    )
    p.add_argument("file", metavar="FILE.md", help="the guide's Markdown text")
    p.add_argument("--title", required=True, help="the guide's title")
    p.add_argument("--license", required=True, metavar="SPDX", help="an open licence, e.g. CC-BY-4.0")
    p.add_argument("--summary", help="one paragraph (default: the first paragraph of the file)")
    p.add_argument("--tag", action="append", metavar="T", help="a lowercase tag (repeatable)")
    p.add_argument("--language", default="en", help="BCP 47 language tag (default: en)")
    p.add_argument("--supersedes", metavar="GUIDE_ID", help="an earlier guide of yours this one replaces")
    p.add_argument("--attach", action="append", metavar="FILE", help="attach a file (repeatable)")
    p.set_defaults(func=cmd_publish_guide)


def _add_offer(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "offer",
        parents=[common],
        help="publish a joint procurement offer",
        description="Publish a joint procurement offer with price tiers.",
    )
    p.add_argument("--title", required=True, help="what is offered")
    p.add_argument("--description", help="details (default: the title)")
    p.add_argument("--category", default="goods", help="Open Eligibility category (default: goods)")
    p.add_argument("--unit", required=True, help="the unit pledged, e.g. 'box of 100 gloves'")
    p.add_argument(
        "--tier",
        action="append",
        required=True,
        metavar="MIN_QTY:UNIT_PRICE",
        help="a price tier, e.g. 100:4.50 (repeatable)",
    )
    p.add_argument("--currency", required=True, metavar="C", help="ISO 4217 code, e.g. GBP")
    p.add_argument(
        "--min-total", required=True, type=_pos_int, metavar="N", help="the total quantity needed to proceed"
    )
    p.add_argument(
        "--deadline", required=True, metavar="ISO_DATE", help="pledges close (YYYY-MM-DD is 00:00 UTC)"
    )
    p.add_argument("--region", action="append", metavar="R", help="a delivery region (repeatable)")
    p.set_defaults(func=cmd_publish_offer)


def _add_procurement(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "pledge",
        parents=[common],
        help="pledge a quantity to an offer (0 withdraws)",
        description="Pledge a quantity to an offer; your newest pledge replaces earlier ones and "
        "0 withdraws.",
    )
    p.add_argument("offer_id", metavar="OFFER_ID", help="the offer's record id")
    p.add_argument("quantity", metavar="QUANTITY", type=_nonneg_int, help="units pledged")
    p.set_defaults(func=cmd_pledge)
    p = sub.add_parser(
        "close-offer",
        parents=[common],
        help="close your offer, naming the pledges counted",
        description="Close your offer as awarded or cancelled, committing to the pledges its "
        "tally counts now.",
    )
    p.add_argument("offer_id", metavar="OFFER_ID", help="the offer's record id")
    p.add_argument("--outcome", required=True, choices=("awarded", "cancelled"), help="awarded or cancelled")
    p.set_defaults(func=cmd_close_offer)


def _add_marks(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "attest",
        parents=[common],
        help="issue a quality mark (authorised assessors)",
        description="Issue a quality-mark attestation; valid only if this hub is an assessor of "
        "the scheme in the charter.",
    )
    p.add_argument("hub_id", metavar="HUB_ID", help="the hub assessed")
    p.add_argument("--scheme", required=True, help="the scheme id from the charter")
    p.add_argument("--level", required=True, help="the level awarded")
    p.add_argument("--valid-from", metavar="DATE", help="start of validity (default: now)")
    p.add_argument("--valid-until", required=True, metavar="DATE", help="end of validity")
    p.add_argument("--evidence", metavar="URL", help="a URL of the assessment report")
    p.add_argument("--evidence-hash", metavar="SHA256", help="SHA-256 (hex) of the assessment report")
    p.add_argument("--summary", help="a short summary of the assessment")
    p.set_defaults(func=cmd_attest)
    p = sub.add_parser(
        "endorse",
        parents=[common],
        help="vouch for a hub's admission",
        description="Endorse a hub's admission to the association.",
    )
    p.add_argument("hub_id", metavar="HUB_ID", help="the hub endorsed")
    p.add_argument("--statement", help="why you endorse it")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="the membership class you name for it (its class is the one most endorsers name)")
    p.set_defaults(func=cmd_endorse)
    p = sub.add_parser(
        "revoke",
        parents=[common],
        help="revoke or withdraw one of your records",
        description="Revoke one of this hub's own attestations, endorsements, guides or offers.",
    )
    p.add_argument("record_id", metavar="RECORD_ID", help="the record to revoke")
    p.add_argument("--reason", required=True, help="why")
    p.set_defaults(func=cmd_revoke)
