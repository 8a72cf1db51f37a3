"""``coophub demo``: a small association of real hubs on loopback, with fictional sample co-ops.

Six hubs, each a separate ``coophub serve`` process with its own home in a temporary folder
(``cli/localnet.py``): four founders — three care co-ops and an assessor body — an applicant co-op and a county
council that the members admit by endorsement while you watch, in membership classes with vote weights (the
council as a non-voting associate). Everything is published through the CLI's own commands on the hub that owns
it, and gossip carries it to the others: profiles, practice guides (one superseded, one with an attachment), a
joint purchase with pledges from several co-ops, a closed offer, quality marks (one revoked), time-credit
payments booked by each payee's hub, a solidarity fund with a claim approved and partly paid, and a vote of the
members that amends the charter to adopt a second quality scheme (cli/demo_governance.py).
The demo then prints each hub's web address and commands to try, and runs until Ctrl-C or ``--minutes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .demo_governance import CLASSES, NEW_SCHEME, collective_voice
from .localnet import LocalHub, LocalNet, free_ports, wait_until
from .output import CliError, console, table

__all__ = ["COOPS", "add_parsers", "build", "cmd_demo"]

ASSOCIATION = "Cymdeithas Gofal Cydweithredol (demo)"
SCHEME, SCHEME_NAME = "care-quality", "Care Quality Mark"
#: Gossip is immediate; anti-entropy every 5 s fills any gap. A minute is plenty for 6 hubs on loopback.
CONVERGE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Coop:
    """A fictional co-op of the demo and its directory entry."""

    slug: str
    name: str
    role: str
    regions: tuple[str, ...]
    services: tuple[str, ...]  # NAME:CATEGORY, as `publish profile --service` takes them
    description: str
    legal_form: str = "co-operative society"
    stakeholders: tuple[str, ...] = ("workers", "service-users")


COOPS = (
    Coop("gofal-gwynedd", "Gofal Gwynedd", "founder", ("Gwynedd", "Anglesey"),
         ("Home care:care", "Respite care:care"),
         "A home care co-operative owned by its 24 care workers, serving rural Gwynedd and Anglesey in Welsh "
         "and English."),
    Coop("cardiff-carers", "Cardiff Community Carers", "founder", ("Cardiff",),
         ("Day centre:care", "Meals on wheels:food"),
         "A multi-stakeholder co-op of carers, service users and families running a day centre and meals.",
         stakeholders=("workers", "service-users", "families")),
    Coop("powys-living", "Powys Supported Living", "founder", ("Powys",),
         ("Supported housing:housing", "Peer support:care"),
         "Supported living run with and for disabled people: tenants sit on the board.",
         stakeholders=("workers", "service-users", "community")),
    Coop("quality-cymru", "Ansawdd Cymru Assessors", "assessor", ("Wales",),
         ("Quality assessment:care",),
         "An independent assessor body, authorised by the charter to award the Care Quality Mark.",
         legal_form="community interest company", stakeholders=("workers",)),
    Coop("newport-helpers", "Newport Home Helpers", "applicant, admitted", ("Newport",),
         ("Home care:care", "Befriending:care"),
         "A new home help co-op of 9 worker-members; admitted to the association during the demo.",
         stakeholders=("workers", "volunteers")),
    Coop("council", "Cyngor Gwynedd (partner)", "council associate", ("Gwynedd",),
         ("Adult social care commissioning:care",),
         "The county council, taking part in co-production as a non-voting associate of the association.",
         legal_form="local authority", stakeholders=("community",)),
)
#: Each co-op's membership class (cli/demo_governance.py has the classes and their weights).
CLASS = {"gofal-gwynedd": "worker-coop", "cardiff-carers": "multi-stakeholder", "powys-living": "user-led",
         "quality-cymru": "assessor", "newport-helpers": "worker-coop", "council": "council"}

GUIDES = {
    "lone-working": ("Safe lone working for home carers", ["safety", "home-care"], """# Safe lone working

Every visit has a **buddy**: a colleague who knows where you are and when you expect to leave.

1. Check in by text when you arrive and when you leave.
2. If a check-in is 20 minutes late, the buddy phones; 40 minutes, the coordinator phones the client.
3. Keep the office number on speed dial and a charged phone with you.

Agree the rota of buddies at the monthly members' meeting, so nobody carries it alone.
"""),
    "lone-working-v2": ("Safe lone working for home carers", ["safety", "home-care", "rural"],
                        """# Safe lone working (2nd edition)

Every visit has a **buddy**: a colleague who knows where you are and when you expect to leave.

1. Check in by text when you arrive and when you leave.
2. If a check-in is 20 minutes late, the buddy phones; 40 minutes, the coordinator phones the client.
3. Keep the office number on speed dial and a charged phone with you.

## Where there is no signal

Many farms in Gwynedd have none. Agree a landline or a neighbour before the first visit, and note it on the
care plan. Give a set time for the check-in and treat silence as late.
"""),
    "lone-working-cy": ("Gweithio ar eich pen eich hun yn ddiogel", ["diogelwch", "gofal-cartref"],
                        """# Gweithio ar eich pen eich hun yn ddiogel

Mae gan bob ymweliad **gyfaill**: cydweithiwr sy'n gwybod ble rydych chi a phryd rydych chi'n disgwyl gadael.

1. Anfonwch neges destun pan fyddwch yn cyrraedd a phan fyddwch yn gadael.
2. Os yw'r neges 20 munud yn hwyr, mae'r cyfaill yn ffonio; ar ôl 40 munud, mae'r cydlynydd yn ffonio'r
   cleient.
3. Cadwch rif y swyddfa ar frys-ddeialu, a ffôn wedi'i wefru gyda chi.
"""),
    "meetings": ("Accessible members' meetings", ["governance", "accessibility"], """# Accessible meetings

Send papers **a week ahead**, in large print and plain text. Ask every member what they need:

- a British Sign Language interpreter or live captions;
- step-free access and a quiet room;
- breaks every 45 minutes.

> Nothing about us without us.
"""),
    "rota": ("Running a rota the workers control", ["governance", "home-care"], """# A worker-led rota

The rota is drafted by a rotating group of three worker-members, published a fortnight ahead, and swaps are
agreed between colleagues without asking a manager. Clients keep the same small team of carers.
"""),
    "getting-started": ("Starting a home help co-op", ["start-up", "home-care"], """# Starting out

What nine of us learnt in our first year: register as a co-operative society, agree a pay policy before the
first contract, and join an association so you never have to write a policy alone.
"""),
}

CHECKLIST = """Accessible meeting checklist
[ ] papers sent a week ahead, large print and plain text
[ ] interpreter or captions booked
[ ] step-free room, quiet space
[ ] breaks every 45 minutes
"""


def _day(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


class Story:
    """Builds the demo association step by step, narrating as it goes."""

    def __init__(self, net: LocalNet, quiet: bool) -> None:
        self.net = net
        self.out = console(sys.stderr if quiet else sys.stdout)
        self.hub = {h.home.name: h for h in net.hubs}
        self.ids: dict[str, str] = {}

    def say(self, text: str) -> None:
        self.out.print(f"  • {text}")

    def arrived(self, record_id: str, hubs: list[LocalHub]) -> None:
        """Wait until every hub in ``hubs`` holds the record (gossip is asynchronous)."""
        for hub in hubs:
            wait_until(lambda h=hub: h.api(f"records/{record_id}") is not None, CONVERGE_TIMEOUT_S,  # type: ignore[misc]
                       f"record {record_id[:12]}… to reach {hub.name}")

    def found(self) -> None:
        g, c, p, q = (self.hub[s] for s in ("gofal-gwynedd", "cardiff-carers", "powys-living", "quality-cymru"))
        slugs = ("gofal-gwynedd", "cardiff-carers", "powys-living", "quality-cymru")
        founders = [x for s in slugs for x in ("--founder", f"{self.hub[s].hub_id}:{CLASS[s]}")]
        classes = [x for name, weight in CLASSES for x in ("--class", f"{name}:{weight}")]
        self.ids["charter"] = g.cli("charter", "create", "--association", ASSOCIATION,
                                    "--description", "Care and support co-operatives of Wales, working together.",
                                    *founders, *classes, "--endorsements-needed", "2",
                                    "--scheme", f"{SCHEME}:{SCHEME_NAME}", "--assessor", q.hub_id)["id"]
        self.say(f"{g.name} founded “{ASSOCIATION}” with 3 other founders; admission needs 2 endorsements; "
                 "classes and vote weights: " + ", ".join(f"{n} {w}" for n, w in CLASSES))
        self.net.start(g)
        previous = g
        for hub in self.net.hubs[1:]:
            joined = hub.cli("join", self.ids["charter"], "--peer", previous.url)
            self.net.start(hub)
            self.say(f"{hub.name} joined through {previous.name} and fetched {joined['received']} record(s)")
            previous = hub

    def profiles(self) -> None:
        for coop in COOPS:
            hub = self.hub[coop.slug]
            argv = ["publish", "profile", "--name", coop.name, "--description", coop.description,
                    "--legal-form", coop.legal_form, "--url", hub.url,
                    "--email", f"hello@{coop.slug}.example.coop", "--website", f"https://{coop.slug}.example.coop"]
            for region in coop.regions:
                argv += ["--region", region]
            for service in coop.services:
                argv += ["--service", service]
            for stakeholder in coop.stakeholders:
                argv += ["--stakeholder", stakeholder]
            self.ids[f"profile:{coop.slug}"] = hub.cli(*argv)["id"]
        self.say("every co-op published its directory entry (the applicant's waits on its own hub until a "
                 "member sponsors it)")

    def guide(self, slug: str, key: str, *extra: str) -> str:
        title, tags, text = GUIDES[key]
        hub = self.hub[slug]
        path = hub.home / f"{key}.md"
        path.write_text(text, encoding="utf-8")
        argv = ["publish", "guide", str(path), "--title", title, "--license", "CC-BY-SA-4.0", *extra]
        for tag in tags:
            argv += ["--tag", tag]
        self.ids[f"guide:{key}"] = hub.cli(*argv)["id"]
        return self.ids[f"guide:{key}"]

    def guides(self) -> None:
        first = self.guide("gofal-gwynedd", "lone-working")
        self.guide("gofal-gwynedd", "lone-working-v2", "--supersedes", first)
        self.guide("gofal-gwynedd", "lone-working-cy", "--language", "cy")  # the pages mark it lang="cy"
        checklist = self.hub["powys-living"].home / "meeting-checklist.txt"
        checklist.write_text(CHECKLIST, encoding="utf-8")
        self.guide("powys-living", "meetings", "--attach", str(checklist))
        self.guide("cardiff-carers", "rota")
        self.say("three co-ops published practice guides (CC BY-SA): one in a 2nd edition and in Welsh, "
                 "one with an attachment")

    def procurement(self) -> None:
        cardiff, gofal, powys = self.hub["cardiff-carers"], self.hub["gofal-gwynedd"], self.hub["powys-living"]
        gloves = cardiff.cli("publish", "offer", "--title", "Nitrile gloves", "--unit", "box of 100",
                             "--description", "Powder-free nitrile examination gloves, sizes S–XL, delivered "
                             "to each co-op's office.", "--category", "goods",
                             "--tier", "50:9.00", "--tier", "100:8.00", "--tier", "250:7.20",
                             "--currency", "GBP", "--min-total", "100", "--deadline", _day(30),
                             "--region", "Cardiff", "--region", "Gwynedd", "--region", "Powys")["id"]
        self.ids["offer:gloves"] = gloves
        self.arrived(gloves, [gofal, powys])
        for hub, quantity in ((cardiff, 35), (gofal, 60), (powys, 40)):
            hub.cli("pledge", gloves, str(quantity))
        aprons = gofal.cli("publish", "offer", "--title", "Disposable aprons", "--unit", "roll of 200",
                           "--tier", "10:12.50", "--tier", "40:10.00", "--currency", "GBP", "--min-total", "10",
                           "--deadline", _day(7), "--region", "Gwynedd", "--region", "Cardiff")["id"]
        self.ids["offer:aprons"] = aprons
        self.arrived(aprons, [cardiff])
        self.arrived(cardiff.cli("pledge", aprons, "25")["id"], [gofal])
        gofal.cli("pledge", aprons, "20")
        gofal.cli("close-offer", aprons, "--outcome", "awarded")
        self.say("Cardiff Community Carers opened a joint purchase of gloves: 135 boxes pledged by 3 co-ops "
                 "(tier 100+ at £8.00 a box); an aprons purchase was awarded and closed")

    def marks(self) -> None:
        q = self.hub["quality-cymru"]
        for slug, level in (("gofal-gwynedd", "gold"), ("cardiff-carers", "silver")):
            q.cli("attest", self.hub[slug].hub_id, "--scheme", SCHEME, "--level", level,
                  "--valid-until", _day(365), "--evidence", f"https://quality.example.coop/reports/{slug}",
                  "--summary", "Annual assessment: person-centred plans, safe staffing, member governance.")
        revoked = q.cli("attest", self.hub["powys-living"].hub_id, "--scheme", SCHEME, "--level", "silver",
                        "--valid-until", _day(365))["id"]
        q.cli("revoke", revoked, "--reason", "Withdrawn pending a re-inspection after a complaint.")
        self.say(f"{q.name} awarded the {SCHEME_NAME} to two co-ops, and revoked a third's pending re-inspection")

    def admission(self) -> None:
        newport, council = self.hub["newport-helpers"], self.hub["council"]
        for slug in ("gofal-gwynedd", "cardiff-carers"):
            self.hub[slug].cli("endorse", newport.hub_id, "--class", "worker-coop", "--statement",
                               "We have worked alongside Newport Home Helpers for a year.")
            self.hub[slug].cli("endorse", council.hub_id, "--class", "council", "--statement",
                               "Our partner in co-producing care in Gwynedd.")
        for hub in (newport, council):
            wait_until(lambda h=hub: bool(h.api("status")["member"]), CONVERGE_TIMEOUT_S,  # type: ignore[misc]
                       f"{hub.name} to learn it was admitted")
        self.guide("newport-helpers", "getting-started")
        newport.cli("pledge", self.ids["offer:gloves"], "15")
        self.say("Gofal Gwynedd and Cardiff Community Carers endorsed Newport Home Helpers (a worker co-op) and "
                 "the council (a non-voting associate): both are members now, and Newport's first guide and "
                 "pledge flow to every hub")

    def mutual_aid(self) -> None:
        """Time credits between co-ops (booked by each payee's hub) and a solidarity fund with one approved claim."""
        g, c, p, n = (self.hub[s] for s in ("gofal-gwynedd", "cardiff-carers", "powys-living", "newport-helpers"))
        payments = [(g, c, "6", "Cover for two night shifts in Caernarfon"),
                    (c, p, "1.5", "Moving and handling training for new carers"),
                    (p, n, "2", "Help with a DBS check and safer-recruitment paperwork")]
        for payer, payee, hours, memo in payments:
            pid = payer.cli("credit", "pay", payee.hub_id, hours, "--memo", memo)["id"]
            self.ids[f"payment:{payer.name}"] = pid
            wait_until(lambda h=payer, i=pid: any(  # type: ignore[misc]
                line["id"] == i and line["status"] == "stands"
                for line in h.api(f"credit/{h.hub_id}")["history"]), CONVERGE_TIMEOUT_S,
                f"{payee.name} to book the payment from {payer.name}")
        self.say("three co-ops paid each other time credits (6, 1.5 and 2 hours); each payee's hub booked its payment")
        fund = g.cli("fund", "create", "--name", "Cronfa Salwch — sick pay circle", "--contribution", "25.00",
                     "--currency", "GBP", "--approvals", "2", "--notice-days", "30",
                     "--description", "Gifts to a member co-op whose carers are off sick, so wages keep being "
                     "paid.")["id"]
        self.ids["fund"] = fund
        self.arrived(fund, [c, p, n])
        joins = [hub.cli("fund", "join", fund)["id"] for hub in (c, p, n)]
        for join in joins:
            self.arrived(join, [n])
        claim = n.cli("fund", "claim", fund, "--amount", "60.00", "--reason",
                      "Two of our nine carers are off sick for three weeks; this covers their wages.")["id"]
        self.ids["claim"] = claim
        self.arrived(claim, [g, c, p])
        for hub in (g, c):
            self.arrived(hub.cli("fund", "approve", claim)["id"], [p])
        wait_until(lambda: p.api(f"funds/{fund}")["claims"][0]["status"] == "approved", CONVERGE_TIMEOUT_S,
                   "the claim to be approved")
        p.cli("fund", "paid", claim, "--amount", "20.00", "--reference", "CRONFA-NEWPORT-1")
        self.say("Gofal Gwynedd started a solidarity fund that three co-ops joined; Newport's claim of 60.00 GBP was "
                 "approved by two members and Powys paid its share")

    def converge(self) -> int:
        """Wait until every hub holds the same records; return how many."""
        with self.out.status("waiting for every hub to hold every record…"):
            wait_until(lambda: len(set(self.net.counts())) == 1, CONVERGE_TIMEOUT_S,
                       "every hub to hold the same records")
        return self.net.counts()[0]


def build(net: LocalNet, quiet: bool = False) -> Story:
    """Set up the hubs of ``net`` (already added) and tell the whole story; return it (its ids)."""
    story = Story(net, quiet)
    story.found()
    story.profiles()
    story.guides()
    story.procurement()
    story.marks()
    story.admission()
    story.mutual_aid()
    collective_voice(story, SCHEME, SCHEME_NAME)
    return story


def _coophub_command() -> str:
    """How the person who started the demo runs coophub (``.venv/bin/coophub`` after ``make demo``)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "coophub":
        return str(argv0)
    sibling = Path(sys.executable).parent / "coophub"
    return str(sibling) if sibling.exists() else (shutil.which("coophub") or "coophub")


def summary(net: LocalNet, story: Story, records: int) -> dict[str, Any]:
    return {
        "association_id": story.ids["charter"],
        "directory": net.hubs[0].url + "/",
        "records": records,
        "dir": str(net.root),
        "hubs": [{"name": h.name, "role": c.role, "url": h.url, "hub_id": h.hub_id, "home": str(h.home),
                  "member": bool(h.api("status")["member"])} for h, c in zip(net.hubs, COOPS, strict=True)],
        "ids": story.ids,
    }


def _print_summary(info: dict[str, Any], minutes: float) -> None:
    out = console()
    hubs = info["hubs"]
    out.print(f"\nThe demo association is ready: {len(hubs)} hubs, {info['records']} records on every hub.\n")
    table(("co-op", "role", "web and API", "member"),
          ([h["name"], h["role"], h["url"] + "/", "yes" if h["member"] else "no"] for h in hubs))
    cmd = _coophub_command()
    gofal, cardiff, newport = hubs[0], hubs[1], hubs[4]
    proposal = info["ids"]["proposal:user-led-standard"]
    out.print(f"""
Search the federated directory in a browser: {info['directory']}
  (any hub answers the same: try {cardiff['url']}/?q=gloves&open=1)
See the members' vote, its roll-call and the amendment it adopted: {newport['url']}/proposals/{proposal}
  {cmd} result {proposal} --home {cardiff['home']}
  {cmd} verify-mark {hubs[2]['hub_id']} {NEW_SCHEME} --home {gofal['home']}

Try, in another terminal:
  {cmd} search care --mark {SCHEME} --home {gofal['home']}
  {cmd} verify-mark {hubs[2]['hub_id']} {SCHEME} --home {cardiff['home']}
  {cmd} show {info['ids']['offer:gloves']} --home {newport['home']}
  curl '{cardiff['url']}/api/v1/directory?q=lone+working'

Time credits and the solidarity fund (every hub shows the same):
  {info['directory']}credit   and   {info['directory']}funds/{info['ids']['fund']}
  {cmd} credit balance --home {cardiff['home']}
  {cmd} fund status {info['ids']['fund']} --home {newport['home']}

Publish on one hub and see it on the others within seconds:
  echo '# Hello from Newport' > hello.md
  {cmd} publish guide hello.md --title 'Hello' --license CC0-1.0 --home {newport['home']}
  then search for it at {gofal['url']}/?q=hello

Each hub's log is serve.log in its home under {info['dir']}.
The demo stops by itself after {minutes:g} minute{"" if minutes == 1 else "s"}; press Ctrl-C to stop it now.""")


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so `kill` stops the demo as cleanly as Ctrl-C does."""
    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _root(args: argparse.Namespace) -> tuple[Path, bool]:
    """The folder for the hubs' homes and whether to remove it at the end."""
    if not args.dir:
        return Path(tempfile.mkdtemp(prefix="coophub-demo-")), True
    root = Path(args.dir)
    if root.exists() and any(root.iterdir()):
        raise CliError(f"{root} is not empty", "give a new or empty folder with --dir", code=2)
    root.mkdir(parents=True, exist_ok=True)
    return root, False


def _watch(net: LocalNet, minutes: float) -> None:
    """Wait until the time is up or a hub dies (bounded: the demo never runs forever)."""
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        dead = net.dead()
        if dead:
            raise CliError(f"hub {dead[0].name} stopped unexpectedly: {dead[0].log_tail(2)}",
                           f"see {dead[0].log_path}")
        time.sleep(0.5)


def cmd_demo(args: argparse.Namespace) -> int:
    root, remove = _root(args)
    ports = free_ports(len(COOPS), args.base_port)
    net = LocalNet(root)
    out = console(sys.stderr if args.json else sys.stdout)
    try:
        with _stop_on_sigterm():
            if args.base_port and ports[0] != args.base_port:
                out.print(f"ports {args.base_port}–{args.base_port + len(COOPS) - 1} are busy; using {ports}")
            out.print(f"Starting {len(COOPS)} hubs on 127.0.0.1, homes under {root}")
            for coop, port in zip(COOPS, ports, strict=True):
                net.add(coop.slug, coop.name, port, region=coop.regions[0])
            story = build(net, quiet=args.json)
            info = summary(net, story, story.converge())
            if args.json:
                sys.stdout.write(json.dumps(info) + "\n")
                sys.stdout.flush()
            else:
                _print_summary(info, args.minutes)
            _watch(net, args.minutes)
            out.print("\ntime is up; stopping the hubs")
    except KeyboardInterrupt:
        out.print("\nstopping the hubs")
    finally:
        net.stop()
        if remove:
            shutil.rmtree(root, ignore_errors=True)
    out.print("stopped" + ("" if remove else f"; the homes are kept in {root}"))
    return 0


def _base_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if value != 0 and not 1 <= value <= 65536 - len(COOPS):
        raise argparse.ArgumentTypeError(
            f"{value} leaves no room for {len(COOPS)} ports; give 1–{65536 - len(COOPS)}, or 0 for any free ports")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not 0 < value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and at most 1440 (a day)")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``coophub demo``."""
    from hub.home import DEFAULT_PORT

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="run a local association of hubs with sample co-ops",
        description=f"Start {len(COOPS)} hubs on 127.0.0.1 (one process each, homes in a temporary folder), build "
        "a sample association on them — founders, an applicant and a council admitted by endorsements, guides, a "
        "joint purchase with pledges, quality marks, time credits, a solidarity fund with an approved claim, a "
        "vote that amends the charter — and print each hub's address and commands to try. Runs until Ctrl-C or "
        "--minutes. --home is not used; --json prints the hubs as one JSON line when ready.",
    )
    p.add_argument("--base-port", type=_base_port, default=DEFAULT_PORT, metavar="PORT",
                   help=f"first of {len(COOPS)} consecutive ports (default {DEFAULT_PORT}; busy or 0: any free ports)")
    p.add_argument("--dir", metavar="DIR", help="keep the hubs' homes in DIR (new or empty) instead of a "
                   "temporary folder that is removed at the end")
    p.add_argument("--minutes", type=_minutes, default=60.0,
                   help="stop by itself after this many minutes (default 60)")
    p.set_defaults(func=cmd_demo)

