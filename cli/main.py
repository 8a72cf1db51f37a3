"""The ``coophub`` command (docs/cli.md): argument parsing and the one place errors become exit codes.

Exit status: 0 done; 1 refused or failed (one line on stderr); 2 bad input (one line, or argparse's usage
line); 130 interrupted. No traceback is ever shown for a user's mistake or an environment problem.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence

from hub import i18n
from hub.db import DatabaseUnusable
from hub.home import HomeError
from hub.i18n import gettext as _
from protocol import ProtocolError

from . import admin, aid, demo, governance, maintenance, network, publish, query
from .output import CliError, error_line

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one usage line plus one ``coophub: error:`` line (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        error_line(f"{message} — see `{self.prog} --help`")
        sys.exit(2)


def _add_common(parser: argparse.ArgumentParser, **defaults: object) -> None:
    parser.add_argument(
        "--home", metavar="DIR", help="the hub's home (default: $COOPHUB_HOME, else ~/.coophub)",
        **defaults,  # type: ignore[arg-type]
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text",
                        **defaults)  # type: ignore[arg-type]


def _common() -> argparse.ArgumentParser:
    """``--home`` and ``--json`` for every command. They may come before the command too
    (``coophub --home DIR status``): the subcommand's copies default to SUPPRESS, so they never overwrite a value
    given earlier."""
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, default=argparse.SUPPRESS)
    return common


def _version() -> str:
    """The installed package's version (pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coophub")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full ``coophub`` parser (also walked by tests/cli/test_docs.py)."""
    parser = _Parser(
        prog="coophub",
        description="A federated directory for social co-operatives: run a hub, "
        "publish, and query the association's directory.",
    )
    _add_common(parser)
    parser.add_argument("--version", action="version", version=f"coophub {_version()}",
                        help="print coophub's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = _common()
    admin.add_parsers(sub, common)
    network.add_parsers(sub, common)
    maintenance.add_parsers(sub, common)
    publish.add_parsers(sub, common)
    query.add_parsers(sub, common)
    aid.add_parsers(sub, common)
    governance.add_parsers(sub, common)
    demo.add_parsers(sub, common)
    return parser


#: Body fields whose option name is not simply ``--field-name``.
_FIELD_OPTIONS = {
    "tags": "--tag",
    "regions": "--region",
    "services": "--service",
    "peer_urls": "--url",
    "tiers": "--tier",
    "evidence_url": "--evidence",
    "subject": "HUB_ID",
    "body": "FILE.md",
    "founders": "--founder",
    "schemes": "--scheme",
    "name": "--name",
    "stakeholders": "--stakeholder",
    "contact": "--email/--phone",
    "offer": "OFFER_ID",
    "target": "RECORD_ID",
    "payee": "HUB_ID",
    "minutes": "HOURS",
    "payment": "PAYMENT_ID",
    "fund": "FUND_ID",
    "claim": "CLAIM_ID",
    "options": "--option",
    "amendment": "--amend-charter",
    "proposal": "PROPOSAL_ID",
    "guide": "GUIDE_ID",
    "to": "HUB_ID",
    "class": "--class",
    "classes": "--class",
    "founder_classes": "--founder",
}


def _as_option(exc: ProtocolError) -> str:
    """A body field's error named by the command-line option that set it (``tags[0]`` -> ``--tag``)."""
    if not exc.field:
        return exc.message
    top = exc.field.split(".")[0].split("[")[0]
    option = _FIELD_OPTIONS.get(top, "--" + top.replace("_", "-"))
    return f"{option}: {exc.message}"


def _network_errors() -> tuple[type[BaseException], ...]:
    """aiohttp's errors, without importing aiohttp for commands that never touch the network."""
    aiohttp = sys.modules.get("aiohttp")
    client_error = aiohttp.ClientError if aiohttp is not None else ()
    return (asyncio.TimeoutError, *((client_error,) if client_error else ()))


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        error_line(exc.line())
        return exc.code
    except ProtocolError as exc:
        error_line(_("%(problem)s — nothing was stored; fix the value and try again") % {"problem": _as_option(exc)})
        return 2
    except HomeError as exc:
        error_line(str(exc))
        return 1
    except _network_errors() as exc:
        error_line(
            _("the running hub did not answer (%(error)s) — check `coophub serve` or stop it and retry")
            % {"error": f"{type(exc).__name__}: {exc}"}
        )
        return 1
    except DatabaseUnusable as exc:
        error_line(str(exc))  # already says what to do (hub.db)
        return 1
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            error_line(_("the database is damaged (%(error)s) — run `coophub check`, then restore from a backup "
                         "(docs/operations.md)") % {"error": exc})
            return 1
        error_line(_("database error: %(error)s — check the disk and the home's permissions") % {"error": exc})
        return 1
    except BrokenPipeError:
        raise  # the reader went away (`coophub export | head`): not an error, see main()
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        problem = f"{exc.strerror or exc}{where}"
        error_line(_("%(error)s — check the path, the disk and permissions") % {"error": problem})
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``coophub``; returns the exit status (the console script exits with it).

    Messages are in Welsh when the locale asks for it (``LANG=cy_GB.UTF-8``, ``LANGUAGE=cy``; hub.i18n), else
    in English; ``--json`` output and help texts are the same in every locale.
    """
    i18n.activate(i18n.locale_from_env())
    try:
        return _run(argv)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:  # `coophub export ... | head`
        # Python flushes stdout again at exit and would print "Exception ignored"; point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
