"""The demo's collective voice (PRODUCT.md §2.1), told on the demo's real hubs through the CLI's own commands:

Powys Supported Living proposes to adopt a second quality scheme — a charter amendment; the co-ops vote with
the weights of their classes (Cardiff Community Carers by proxy, through Powys), the council — a non-voting
associate — is refused when it tries to vote, the proposer closes the vote, the amendment is in force on every
hub, and the assessor gives the new scheme's first mark.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING

from .localnet import wait_until
from .output import CliError

if TYPE_CHECKING:
    from .demo import Story

__all__ = ["CLASSES", "NEW_SCHEME", "NEW_SCHEME_NAME", "VOTING_S", "collective_voice"]

#: Membership classes and vote weights: user-led organisations carry double weight ("nothing about us without
#: us"); the assessor body and the council take part without a vote.
CLASSES = (("worker-coop", 1), ("multi-stakeholder", 1), ("user-led", 2), ("assessor", 0), ("council", 0))
NEW_SCHEME, NEW_SCHEME_NAME = "user-led-standard", "User-Led Support Standard"
#: How long the vote stays open: enough for every hub to get the proposal and for four co-ops to vote, on a
#: loaded machine. The demo waits for the closing time before the proposer closes.
VOTING_S = 25


def _why(exc: CliError) -> str:
    """The reason in a refused command's line, without the command, the field name and the fix."""
    why = exc.what.split("): ", 1)[-1].split(" — ")[0]
    return re.sub(r"^[\w.\[\]]+: ", "", why)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def collective_voice(story: Story, scheme: str, scheme_name: str) -> None:
    """Run the vote on ``story``'s hubs (after the admissions); record ids go into ``story.ids``."""
    hub = story.hub
    gofal, cardiff, powys, quality, newport, council = (hub[s] for s in (
        "gofal-gwynedd", "cardiff-carers", "powys-living", "quality-cymru", "newport-helpers", "council"))
    try:
        quality.cli("attest", powys.hub_id, "--scheme", NEW_SCHEME, "--level", "full", "--valid-until", "2099-01-01")
    except CliError as exc:
        story.say(f"before any vote, {quality.name} cannot award the {NEW_SCHEME_NAME}: {_why(exc)}")
    amendment = powys.home / "adopt-user-led-standard.toml"
    amendment.write_text(
        "# A second quality scheme, adopted by the members (the first is listed too: a list replaces the list)\n"
        f'[[schemes]]\nid = "{scheme}"\nname = "{scheme_name}"\nassessors = ["{quality.hub_id}"]\n\n'
        f'[[schemes]]\nid = "{NEW_SCHEME}"\nname = "{NEW_SCHEME_NAME}"\nassessors = ["{quality.hub_id}"]\n',
        encoding="utf-8")
    body = powys.home / "user-led-standard.md"
    body.write_text("# Adopt the User-Led Support Standard\n\nA second quality mark, assessed with people who use "
                    "services: does the co-op involve them in every decision about their support?\n",
                    encoding="utf-8")
    closes = int(time.time() * 1000) + VOTING_S * 1000
    proposal = powys.cli("propose", "--title", "Adopt the User-Led Support Standard", "--option", "adopt",
                         "--option", "reject", "--body", str(body), "--closes", _iso(closes),
                         "--amend-charter", str(amendment))["id"]
    story.ids["proposal:user-led-standard"] = proposal
    story.say(f"{powys.name} proposed to adopt the {NEW_SCHEME_NAME}, a charter amendment decided by two thirds "
              f"of the vote weight with half the voting members; voting closes in {VOTING_S} s")
    story.arrived(proposal, [gofal, cardiff, newport, council])
    gofal.cli("vote", proposal, "adopt")
    powys.cli("vote", proposal, "adopt")
    cardiff.cli("delegate", powys.hub_id, "--proposal", proposal)
    newport.cli("vote", proposal, "reject")
    story.say("Gofal Gwynedd (worker co-op, weight 1) and Powys (user-led, weight 2) voted adopt, Cardiff "
              "Community Carers gave its vote to Powys by proxy, Newport Home Helpers voted reject")
    try:
        council.cli("vote", proposal, "adopt")
    except CliError as exc:
        story.say(f"{council.name} tried to vote and was refused: {_why(exc)}")
    with story.out.status("waiting for voting to close…"):
        time.sleep(max(0.0, closes / 1000 - time.time()) + 0.5)
    wait_until(lambda: len(powys.api(f"proposals/{proposal}")["roll_call"]) == 4, 90,
               "every ballot to reach Powys Supported Living")
    close = powys.cli("close-proposal", proposal)
    story.ids["proposal-close:user-led-standard"] = close["id"]
    wait_until(lambda: all(NEW_SCHEME in {s["id"] for s in h.api("terms")["schemes"]} for h in story.net.hubs),
               90, "every hub to have the amendment in force")
    result = powys.api(f"proposals/{proposal}")
    adopt, reject = (o["weight"] for o in result["options"])
    story.say(f"Powys closed the vote: {result['status']}, {adopt} to {reject} in vote weight with "
              f"{result['turnout']} of {result['voters']} voting members; the amendment is in force on every hub")
    mark = quality.cli("attest", powys.hub_id, "--scheme", NEW_SCHEME, "--level", "full",
                       "--valid-until", (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).date().isoformat(),
                       "--summary", "People who use the service sit on every support-planning panel.")["id"]
    story.ids[f"mark:{NEW_SCHEME}"] = mark
    story.arrived(mark, story.net.hubs)
    story.say(f"{quality.name} awarded the first {NEW_SCHEME_NAME} mark, to {powys.name}")
