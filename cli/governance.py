"""The association's collective voice on the command line (docs/cli.md "Proposals and votes"):

    propose · vote · delegate · close-proposal · result · proposals · review · charter terms

Publishing commands print the new record's id (``--json``: ``{"id": ...}``) and go through
:func:`cli.common.publish`, so this hub's checks (hub.governance_checks) refuse a vote after the closing time,
an unknown option, a vote or proxy of a non-member or weight-0 associate, a proxy to oneself, an early close
or someone else's, and an amendment that would leave no voting member — with one line, storing nothing.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from hub.governance import current_terms
from hub.home import Home
from hub.proposals import proposal_view, proposals_list, terms_json
from protocol.jsonview import body_from_json
from protocol.kinds import AMENDABLE_FIELDS, QUORUM_BASES, RULES

from .common import home_from, now_ms, open_store, parse_hub, parse_record_id, parse_when, print_id, publish
from .output import CliError, emit, emit_json, kv, table

__all__ = ["add_charter_parsers", "add_parsers", "read_amendment", "terms_toml"]


def _view(home: Home, proposal_id: bytes) -> dict[str, Any]:
    with open_store(home) as store:
        view: dict[str, Any] | None = store.view(proposal_view, proposal_id, now_ms())
    if view is None:
        raise CliError(f"no proposal {proposal_id.hex()} on this hub",
                       "check the id with `coophub proposals`, or wait for the hub to sync")
    return view


# -- propose -------------------------------------------------------------------------------------------------


def read_amendment(path: str) -> dict[str, Any]:
    """An amendment from a TOML file of charter fields with their new values (hub ids as ``hub_…`` text).

    Raises:
        CliError: unreadable file, not TOML, or a field that is not an amendable charter term.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", "check the path", code=2) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"{path} is not a TOML file ({exc})", "see docs/cli.md, `coophub propose`", code=2) from None
    unknown = sorted(set(data) - AMENDABLE_FIELDS)
    if unknown:
        raise CliError(f"{path}: {unknown[0]!r} is not a charter term members can amend",
                       f"amendable terms: {', '.join(sorted(AMENDABLE_FIELDS))}", code=2)
    if not data:
        raise CliError(f"{path} changes nothing", "name at least one term; `coophub charter terms --toml` "
                       "prints the current ones", code=2)
    amendment: dict[str, Any] = body_from_json("proposal", {"amendment": data})["amendment"]
    return amendment


def _read_body(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text", "save it as UTF-8 Markdown", code=2) from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", "check the path", code=2) from None


def cmd_propose(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {"title": args.title, "options": list(args.option), "closes": parse_when(
        args.closes, "--closes")}
    if args.body:
        body["body"] = _read_body(args.body)
    rule, quorum, quorum_of = args.rule or "majority", args.quorum, args.quorum_of or "members"
    if args.amend_charter:
        body["amendment"] = read_amendment(args.amend_charter)
        with open_store(home) as store:
            terms = store.view(current_terms)
        if terms is not None:  # an amendment is decided by the charter's own rule unless told otherwise
            rule = args.rule or terms.amendment_rule
            quorum = terms.amendment_quorum if quorum is None else quorum
            quorum_of = args.quorum_of or terms.amendment_quorum_of
    body.update(rule=rule, quorum=50 if quorum is None else quorum, quorum_of=quorum_of)
    if args.abstain:
        body["abstain"] = args.abstain
    if args.objection:
        body["objection"] = args.objection
    return print_id(args, publish(home, "proposal", body))


# -- vote, delegate, close -----------------------------------------------------------------------------------


def _option(view: dict[str, Any], text: str) -> str:
    """The proposal's option ``text`` names: exactly, else the one option equal to it ignoring case."""
    options = [o["option"] for o in view["options"]]
    if text in options:
        return text
    folded = [o for o in options if o.casefold() == text.strip().casefold()]
    if len(folded) == 1:
        return str(folded[0])
    raise CliError(f"{text!r} is not an option of this proposal", f"the options are: {', '.join(options)}",
                   code=2)


def cmd_vote(args: argparse.Namespace) -> int:
    home = home_from(args)
    proposal_id = parse_record_id(args.proposal_id, "proposal id")
    option = _option(_view(home, proposal_id), args.option)
    return print_id(args, publish(home, "ballot", {"proposal": proposal_id, "option": option}))


def cmd_delegate(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {"to": parse_hub(args.hub_id)}
    if args.proposal:
        body["proposal"] = parse_record_id(args.proposal, "proposal id")
    return print_id(args, publish(home, "delegation", body))


def cmd_close_proposal(args: argparse.Namespace) -> int:
    home = home_from(args)
    proposal_id = parse_record_id(args.proposal_id, "proposal id")
    view = _view(home, proposal_id)
    if view["author"] != home.hub_id:
        raise CliError("only the proposer can close a proposal", f"it was made by {view['author']}")
    if view["close_id"]:
        raise CliError(f"proposal {proposal_id.hex()} is already closed ({view['status']})", "nothing to do")
    ballots = sorted({bytes.fromhex(v["ballot"]) for v in view["roll_call"]})
    delegations = sorted({bytes.fromhex(v["delegation"]) for v in view["roll_call"] if v["delegation"]})
    record_id = publish(home, "proposal-close", {"proposal": proposal_id, "ballots": ballots,
                                                 "delegations": delegations})
    return print_id(args, record_id, outcome=view["outcome"], ballots=[b.hex() for b in ballots],
                     delegations=[d.hex() for d in delegations])


def cmd_review(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {"guide": parse_record_id(args.guide_id, "guide id")}
    if args.comment:
        body["comment"] = args.comment
    return print_id(args, publish(home, "review", body))


# -- reading -------------------------------------------------------------------------------------------------


def cmd_result(args: argparse.Namespace) -> int:
    home = home_from(args)
    view = _view(home, parse_record_id(args.proposal_id, "proposal id"))
    if args.json:
        emit_json(view)
        return 0
    q = view["quorum"]
    state = view["status"] if view["close_id"] else f"{view['status']} (on the tally so far: {view['outcome']})"
    kv([("proposal", view["title"]), ("id", view["id"]), ("by", view["author_name"] or view["author"]),
        ("status", state), ("rule", view["rule"]),
        ("closes", view["closes"]),
        ("turnout", f"{view['turnout']} of {view['voters']} voting members, weight {view['turnout_weight']} "
                    f"of {view['electorate_weight']}"),
        ("quorum", f"{'met' if q['met'] else 'not met'}: {q['participating']} of {q['base']} "
                   f"({q['percent']}% of {q['of']}, {q['needed']} needed)")])
    table(("option", "members", "weight"), ([o["option"], o["votes"], o["weight"]] for o in view["options"]))
    if view["roll_call"]:
        table(("co-op", "class", "weight", "vote", "how"),
              ([v["name"] or v["hub"], v["class"], v["weight"], v["option"],
                f"by proxy: {v['proxy_name'] or v['proxy']}" if v["proxy"] else "directly"]
               for v in view["roll_call"]), title="roll-call")
    if view["amendment"]:
        emit(f"amendment: {view['amendment']['state']} — {view['amendment']['reason']}")
    if view["recount"] and not view["recount"]["matches"]:
        emit(f"recount differs: {len(view['recount']['omitted'])} ballot(s) left out of the close")
    return 0


def cmd_proposals(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store:
        data = store.view(proposals_list, now_ms(), args.limit)
    if args.json:
        emit_json(data)
        return 0
    if not data["results"]:
        emit("no proposals yet")
        return 0
    table(("status", "title", "closes", "voted", "id"),
          ([p["status"], p["title"][:50], p["closes"][:16], f"{p['turnout']}/{p['voters']}", p["id"]]
           for p in data["results"]))
    return 0


def terms_toml(terms: dict[str, Any]) -> str:
    """The amendable terms of ``terms`` (hub.proposals.terms_json) as a TOML file for ``--amend-charter``."""
    lines = ["# The charter's terms in force. Edit, keep what you change, and propose it with", "#   coophub "
             "propose --title ... --option adopt --option reject --closes ... --amend-charter FILE.toml", ""]
    for name in ("endorsements_needed", "reviews_needed", "credit_limit_minutes", "amendment_quorum"):
        lines.append(f"{name} = {terms[name]}")
    for name in ("amendment_rule", "amendment_quorum_of"):
        lines.append(f"{name} = {_q(terms[name])}")
    for c in terms["classes"]:
        lines += ["", "[[classes]]", f"name = {_q(c['name'])}", f"weight = {c['weight']}"]
    for fc in terms["founder_classes"]:
        lines += ["", "[[founder_classes]]", f"hub = {_q(fc['hub'])}", f"class = {_q(fc['class'])}"]
    for s in terms["schemes"]:
        lines += ["", "[[schemes]]", f"id = {_q(s['id'])}", f"name = {_q(s['name'])}",
                  "assessors = [" + ", ".join(_q(a) for a in s["assessors"]) + "]"]
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_charter_terms(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store:
        terms = store.view(current_terms)
    if terms is None:
        raise CliError("this hub has no charter yet", "run `coophub charter create` or `coophub join` first")
    data = terms_json(terms)
    if args.json:
        emit_json(data)
    elif args.toml:
        emit(terms_toml(data).rstrip("\n"))
    else:
        kv([("association", data["name"]), ("since", data["since"]),
            ("amended by", data["amended_by"] or None), ("endorsements needed", data["endorsements_needed"]),
            ("reviews needed", data["reviews_needed"]),
            ("amendments", f"{data['amendment_rule']}, quorum {data['amendment_quorum']}% of "
                           f"{data['amendment_quorum_of']}")])
        table(("class", "weight"), ([c["name"], c["weight"]] for c in data["classes"]))
        table(("scheme", "name", "assessors"), ([s["id"], s["name"], len(s["assessors"])]
                                               for s in data["schemes"]))
    return 0


# -- parsers -------------------------------------------------------------------------------------------------


def _percent(text: str) -> int:
    if not text.isdigit() or int(text) > 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole percentage from 0 to 100")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError("must be from 1 to 100")
    return int(text)


def add_charter_parsers(charter_sub: Any, common: argparse.ArgumentParser) -> None:
    """``coophub charter terms``, under the ``charter`` command of cli.publish."""
    p = charter_sub.add_parser("terms", parents=[common], help="show the charter's terms in force",
                               description="Show the charter's terms in force now, as the members amended them: "
                               "admission rule, classes and weights, schemes and assessors, reviews needed, "
                               "the rule for amendments.")
    p.add_argument("--toml", action="store_true", help="print them as a TOML file to edit for --amend-charter")
    p.set_defaults(func=cmd_charter_terms)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register propose, vote, delegate, close-proposal, result, proposals and review."""
    p = sub.add_parser("propose", parents=[common], help="propose a motion for the members to vote on",
                       description="Propose a motion; the first --option is the motion itself (e.g. yes, "
                       "adopt). Prints its id. With --amend-charter the proposal carries new charter terms, "
                       "in force from the closing time if it passes.")
    p.add_argument("--title", required=True, help="what is proposed, in a line")
    p.add_argument("--option", action="append", required=True, metavar="O",
                   help="an option (repeat: at least 2; the first is the motion)")
    p.add_argument("--body", metavar="FILE.md", help="the proposal's text, in Markdown")
    p.add_argument("--rule", choices=sorted(RULES), help="how it is decided (default: majority; for an "
                   "amendment, the charter's amendment rule)")
    p.add_argument("--quorum", type=_percent, metavar="PCT", help="percent taking part for the vote to count "
                   "(default 50; for an amendment, the charter's)")
    p.add_argument("--quorum-of", choices=sorted(QUORUM_BASES), help="the quorum counts voting members "
                   "(default) or their vote weight")
    p.add_argument("--abstain", metavar="O", help="an option that counts for the quorum, not the decision")
    p.add_argument("--objection", metavar="O", help="consent: the option that blocks (default: the last)")
    p.add_argument("--closes", required=True, metavar="ISO_DATETIME",
                   help="when voting closes, e.g. 2026-06-30T12:00Z (UTC unless an offset is given)")
    p.add_argument("--amend-charter", metavar="FILE.toml", help="new values of charter terms (see `coophub "
                   "charter terms --toml`)")
    p.set_defaults(func=cmd_propose)
    p = sub.add_parser("vote", parents=[common], help="vote on a proposal",
                       description="Vote on a proposal; your newest vote before the closing time counts and "
                       "overrides your proxy.")
    p.add_argument("proposal_id", metavar="PROPOSAL_ID", help="the proposal's id")
    p.add_argument("option", metavar="OPTION", help="one of its options")
    p.set_defaults(func=cmd_vote)
    p = sub.add_parser("delegate", parents=[common], help="give another member your vote (a proxy)",
                       description="Let another member vote for this hub, on one proposal or on all; your own "
                       "vote overrides it; withdraw it with `coophub revoke DELEGATION_ID`.")
    p.add_argument("hub_id", metavar="HUB_ID", help="the member who votes for you")
    p.add_argument("--proposal", metavar="ID", help="only for this proposal (default: every proposal)")
    p.set_defaults(func=cmd_delegate)
    p = sub.add_parser("close-proposal", parents=[common], help="close your proposal after its closing time",
                       description="Close your proposal after its closing time, naming exactly the ballots "
                       "and proxies counted, so the result is final and anyone can recheck it.")
    p.add_argument("proposal_id", metavar="PROPOSAL_ID", help="the proposal's id")
    p.set_defaults(func=cmd_close_proposal)
    p = sub.add_parser("result", parents=[common], help="a proposal's status, tally and roll-call",
                       description="A proposal's status (open, closing, passed, failed, no-quorum), votes per "
                       "option raw and weighted, turnout, quorum, who voted what, and its amendment.")
    p.add_argument("proposal_id", metavar="PROPOSAL_ID", help="the proposal's id")
    p.set_defaults(func=cmd_result)
    p = sub.add_parser("proposals", parents=[common], help="list proposals, open ones first",
                       description="List proposals: open ones first (closing soonest first), then those "
                       "awaiting their close, then closed ones.")
    p.add_argument("--limit", type=_limit, default=20, help="how many (1–100, default 20)")
    p.set_defaults(func=cmd_proposals)
    p = sub.add_parser("review", parents=[common], help="approve one exact guide version",
                       description="Approve one exact version of another member's guide; enough approvals "
                       "make it association-reviewed.")
    p.add_argument("guide_id", metavar="GUIDE_ID", help="the guide version's id")
    p.add_argument("--comment", help="a short comment")
    p.set_defaults(func=cmd_review)
