"""A hub's home directory: its key, configuration, API token, database and blobs.

Layout (docs/operations.md):

    HOME/hub.key        32-byte Ed25519 seed, mode 0600; never leaves the home
    HOME/api.token      bearer token for POST /api/v1/publish, mode 0600
    HOME/config.toml    name, region, public URL, association id, seed peers, listen address, [limits]
    HOME/hub.sqlite3    records and derived state (SQLite, WAL)
    HOME/blobs/         guide attachments, content-addressed by SHA-256
    HOME/serve.json     written by a running `coophub serve`: its URL and pid, so the CLI can publish through it

A hub refuses to start on a home it cannot read safely (PRODUCT.md §5) and says why in one line, naming the
``chmod`` that fixes it (:func:`unsafe_reason`): the home, config.toml, the database and blobs/ must not be
writable by other users (whoever can write them can replace the key, point the CLI at another URL, or rewrite
records), and hub.key and api.token must not be readable or writable by them either. ``coophub init`` creates
everything so (directories 0700, files 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol import DEFAULT_LIMITS, HubKey, Limits, limits_from_mapping

from .logs import LOG_FORMATS, LOG_LEVELS

__all__ = ["HomeError", "HubConfig", "Home", "check_home_files", "default_home", "unsafe_reason"]

ENV_HOME = "COOPHUB_HOME"
ENV_LIMIT_PREFIX = "COOPHUB_LIMIT_"
DEFAULT_PORT = 8470
#: The demo association is in Wales; public services there work in UK time.
DEFAULT_TIMEZONE = "Europe/London"


class HomeError(Exception):
    """A home directory that cannot be created or used; the message says what to do."""


#: What other users may not do to each part of a home: (mode bits refused, the chmod that fixes it). The
#: database's -wal and -shm files are created by SQLite with the database's own mode, so checking the
#: database covers them; serve.json is checked where it is read (hub.serve_proof).
_SECRET = (stat.S_IRWXG | stat.S_IRWXO, "600")
_NOT_WRITABLE = (stat.S_IWGRP | stat.S_IWOTH, "go-w")
_DIRECTORY = (stat.S_IWGRP | stat.S_IWOTH, "700")
_RULES: dict[str, tuple[int, str]] = {
    ".": _DIRECTORY, "hub.key": _SECRET, "api.token": _SECRET, "config.toml": _NOT_WRITABLE,
    "hub.sqlite3": _NOT_WRITABLE, "hub.sqlite3-wal": _NOT_WRITABLE, "hub.sqlite3-shm": _NOT_WRITABLE,
    "blobs": _DIRECTORY,
}


def unsafe_reason(path: Path, rule: tuple[int, str]) -> str | None:
    """One line saying why ``path`` is unsafe under ``rule`` and the command that fixes it; None if it is safe
    or absent. A file owned by another user (other than root) is unsafe whatever its mode: its owner can
    change it. A symbolic link is judged by what it points to (``stat``), as every reader follows it.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror}"
    if info.st_uid not in (os.geteuid(), 0):
        return (f"{path} belongs to another user (uid {info.st_uid}); run `chown {os.geteuid()} {path}` as root, "
                f"or run coophub as its owner")
    bits, fix = rule
    if not info.st_mode & bits:
        return None
    what = "readable or writable" if bits & (stat.S_IRGRP | stat.S_IROTH) else "writable"
    return f"{path} is {what} by other users (mode {stat.S_IMODE(info.st_mode):o}); run `chmod {fix} {path}`"


def check_home_files(path: Path) -> None:
    """Refuse a home whose directory, key, token, config, database or blobs others could change (or read, for
    the key and token).

    Raises:
        HomeError: the first unsafe part, with the chmod that fixes it.
    """
    for name, rule in _RULES.items():
        reason = unsafe_reason(path if name == "." else path / name, rule)
        if reason is not None:
            raise HomeError(reason)


def default_home() -> Path:
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".coophub")


@dataclass
class HubConfig:
    name: str
    region: str = ""
    url: str = ""  # the public URL at which peers reach this hub
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    association_id: str = ""  # hex; empty until `charter create` or `join`
    peers: list[str] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    #: IANA time zone for showing times and for date-only deadlines (the end of that day, here).
    timezone: str = DEFAULT_TIMEZONE
    #: hub.logs: "plain" or "json"; "debug" … "error"; one line per HTTP request when access_log is true.
    log_format: str = "plain"
    log_level: str = "info"
    access_log: bool = False

    def to_toml(self) -> str:
        lines = [
            "# coophub hub configuration; see docs/operations.md",
            f"name = {json.dumps(self.name)}",
            f"region = {json.dumps(self.region)}",
            f"url = {json.dumps(self.url)}",
            f"host = {json.dumps(self.host)}",
            f"port = {self.port}",
            f"association_id = {json.dumps(self.association_id)}",
            f"peers = {json.dumps(self.peers)}",
            "# IANA time zone for times on pages and for date-only deadlines (they end at 23:59:59 here)",
            f"timezone = {json.dumps(self.timezone)}",
            "# Logs go to stderr (the journal): log_format \"plain\" or \"json\"; log_level debug, info, warning or",
            "# error; access_log = true adds one line per HTTP request",
            f"log_format = {json.dumps(self.log_format)}",
            f"log_level = {json.dumps(self.log_level)}",
            f"access_log = {'true' if self.access_log else 'false'}",
            "",
            "# Override any limit of protocol/limits.py, e.g. push_fanout = 6",
            "[limits]",
        ]
        lines += [f"{k} = {int(v)}" for k, v in sorted(self.limits.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str) -> HubConfig:
        """Raises:
        HomeError: not valid TOML, or a field of the wrong type.
        """
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HomeError(f"config.toml is not valid TOML ({exc}); fix or restore it") from None
        try:
            return cls(
                name=str(data["name"]),
                region=str(data.get("region", "")),
                url=str(data.get("url", "")),
                host=str(data.get("host", "127.0.0.1")),
                port=int(data.get("port", DEFAULT_PORT)),
                association_id=str(data.get("association_id", "")),
                peers=[str(p) for p in data.get("peers", [])],
                limits=dict(data.get("limits", {})),
                timezone=_timezone(str(data.get("timezone", DEFAULT_TIMEZONE))),
                log_format=_choice(data, "log_format", "plain", LOG_FORMATS),
                log_level=_choice(data, "log_level", "info", LOG_LEVELS),
                access_log=_flag(data, "access_log"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HomeError(f"config.toml has a missing or malformed field ({exc}); fix it") from None


def _choice(data: dict[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    """Raises:
    HomeError: the value is not one of ``allowed``.
    """
    value = data.get(key, default)
    if value not in allowed:
        raise HomeError(f"config.toml: {key} = {value!r} is not one of {', '.join(allowed)}; fix it")
    return str(value)


def _flag(data: dict[str, Any], key: str) -> bool:
    """Raises:
    HomeError: the value is not true or false.
    """
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise HomeError(f"config.toml: {key} must be true or false, not {value!r}; fix it")
    return value


def _timezone(name: str) -> str:
    """Raises:
    HomeError: not an IANA time zone name this machine knows.
    """
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise HomeError(f"config.toml: timezone {name!r} is not a known time zone; use a name such as "
                        f"{DEFAULT_TIMEZONE!r}") from None
    return name


class Home:
    """An opened hub home. Use :meth:`create` for a new hub and :meth:`open` for an existing one."""

    def __init__(self, path: Path, key: HubKey, config: HubConfig, token: str) -> None:
        self.path = path
        self.key = key
        self.config = config
        self.token = token

    key_path = property(lambda self: self.path / "hub.key")
    token_path = property(lambda self: self.path / "api.token")
    config_path = property(lambda self: self.path / "config.toml")
    db_path = property(lambda self: self.path / "hub.sqlite3")
    blobs_dir = property(lambda self: self.path / "blobs")
    serve_path = property(lambda self: self.path / "serve.json")

    @property
    def hub_id(self) -> str:
        return self.key.hub_id

    @property
    def association(self) -> bytes | None:
        return bytes.fromhex(self.config.association_id) if self.config.association_id else None

    def limits(self) -> Limits:
        """Limits from defaults, then config.toml's [limits], then COOPHUB_LIMIT_<NAME> environment variables.

        Raises:
            HomeError: an unknown limit name or a bad value.
        """
        env = {k[len(ENV_LIMIT_PREFIX):].lower(): v for k, v in os.environ.items()
               if k.startswith(ENV_LIMIT_PREFIX)}
        try:
            return limits_from_mapping(env, limits_from_mapping(self.config.limits, DEFAULT_LIMITS))
        except ValueError as exc:
            raise HomeError(str(exc)) from None

    @classmethod
    def create(cls, path: Path, name: str, *, region: str = "", url: str = "", seed: bytes | None = None) -> Home:
        """Create a new hub home with a fresh key (or the key whose 32-byte ``seed`` is given: a restore) and a
        fresh token, every file 0600 and every directory 0700.

        Raises:
            HomeError: the directory already holds a hub, or cannot be created.
        """
        path = path.expanduser()
        if (path / "hub.key").exists():
            raise HomeError(f"{path} already holds a hub; use another --home or remove it first")
        if not name.strip():
            raise HomeError("--name must not be empty")
        try:
            if path.is_dir() and any(path.iterdir()):
                check_home_files(path)  # a directory already in use is not re-moded behind its owner's back
            else:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                path.chmod(0o700)  # an empty directory made with the umask's 0755 (or 0777) becomes private
            key = HubKey.generate() if seed is None else HubKey.from_seed(seed)
            token = secrets.token_urlsafe(32)
            _write_private(path / "hub.key", key.seed())
            _write_private(path / "api.token", token.encode() + b"\n")
            config = HubConfig(name=name.strip(), region=region, url=url)
            _write_private(path / "config.toml", config.to_toml().encode("utf-8"))
            (path / "blobs").mkdir(exist_ok=True, mode=0o700)
            (path / "blobs").chmod(0o700)
        except OSError as exc:
            raise HomeError(f"cannot create hub home {path}: {exc.strerror}") from None
        return cls(path, key, config, token)

    @classmethod
    def open(cls, path: Path) -> Home:
        """Open an existing home, refusing one that is missing, unreadable or unsafe.

        Raises:
            HomeError: no hub there, a part others could change or read (:func:`check_home_files`), or an
                unreadable/corrupt file.
        """
        path = path.expanduser()
        key_path = path / "hub.key"
        if not key_path.exists():
            raise HomeError(f"no hub at {path}; create one with `coophub init --name NAME --home {path}`")
        check_home_files(path)
        try:
            seed = key_path.read_bytes()
            token = (path / "api.token").read_text(encoding="utf-8").strip()
            config = HubConfig.from_toml((path / "config.toml").read_text(encoding="utf-8"))
        except OSError as exc:
            raise HomeError(f"cannot read hub home {path}: {exc.strerror} ({exc.filename})") from None
        if len(seed) != 32:
            raise HomeError(f"{key_path} is not a coophub key (expected 32 bytes, found {len(seed)})")
        (path / "blobs").mkdir(exist_ok=True, mode=0o700)
        return cls(path, HubKey.from_seed(seed), config, token)

    def save_config(self) -> None:
        """Write config.toml atomically (write a temporary file, fsync, rename), keeping what the operator wrote.

        The fields of :class:`HubConfig` are updated in place in the existing file with tomlkit, so comments,
        blank lines, key order and keys this version does not know survive `peers add`, `join` and
        `charter create`; a file that is missing or not TOML is written afresh.
        """
        tmp = self.config_path.with_suffix(".toml.tmp")
        text = _merge_toml(self.config_path, self.config)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a crash; O_EXCL below must create it afresh with mode 0600
        _write_private(tmp, text.encode("utf-8"))
        os.replace(tmp, self.config_path)

    def check_database(self) -> None:
        """Refuse to open an existing hub whose database is gone: SQLite would create an empty one, and the hub
        would start as a new, empty hub without a word (``coophub init`` creates the database).

        Raises:
            HomeError: hub.sqlite3 is missing.
        """
        if not self.db_path.exists():
            raise HomeError(f"{self.db_path} is missing; put the database back, or rebuild this hub from its key "
                            "with `coophub restore` (docs/operations.md)")

    def running_url(self) -> str | None:
        """The URL of a `coophub serve` running on this home: only when serve.json is safe, names a live
        process, and the server at its URL proves it holds this home's token (hub.serve_proof); else None."""
        from .serve_proof import verified_url

        return verified_url(self)


def _merge_toml(path: Path, config: HubConfig) -> str:
    """``config`` written over the TOML document at ``path``, changing only values that differ."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, TOMLKitError):
        return config.to_toml()
    fresh = tomlkit.parse(config.to_toml())
    for key, value in fresh.items():
        if key == "limits":
            continue
        if doc.get(key) != value:
            doc[key] = value
    limits = doc.get("limits")
    if not isinstance(limits, dict):
        limits = tomlkit.table()
        doc["limits"] = limits
    for name in [k for k in limits if k not in config.limits]:
        del limits[name]
    for name, value in sorted(config.limits.items()):
        if limits.get(name) != int(value):
            limits[name] = int(value)
    return tomlkit.dumps(doc)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
