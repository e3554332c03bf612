"""The one typed configuration object, read from `DIR/conf/coremail.toml` and
then `COREMAIL_<SECTION>__<KEY>` environment variables (environment wins).

Settings are frozen: a reload builds a new object (see `ConfigWatcher`), so a
request that started with one configuration finishes with it. Sizes ("50M")
and durations ("5m") are parsed here once; they keep their text for display.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, GetCoreSchemaHandler, ValidationError,
                      ValidationInfo, field_validator)
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_RELATIVE = Path("conf") / "coremail.toml"

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_SIZE_MULT = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DUR_MULT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ZONE_RE = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


class ConfigError(Exception):
    """A configuration problem, worded for an administrator (names the key).
    `problems` maps each bad key to what is wrong with it (a form shows them)."""

    def __init__(self, text: str, problems: dict[str, str] | None = None):
        super().__init__(text)
        self.problems = problems or {}


def parse_size(value: Any) -> int:
    """Bytes from 1024, "50M", "1G", "512K" (binary multiples)."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or like 50M, 1G")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size: use bytes or a number with K, M or G (e.g. 50M)")
    return int(m.group(1)) * _SIZE_MULT[m.group(2).upper()]


def parse_duration(value: Any) -> float:
    """Seconds from 30, "30s", "5m", "2h", "5d"."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 5m, 2h or 5d")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DUR_RE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration: use a number with s, m, h or d (e.g. 5m)")
    return float(m.group(1)) * _DUR_MULT[(m.group(2) or "s").lower()]


class _Written:
    """A parsed value that remembers how it was written, for display."""

    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_plain_validator_function(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(str))


class Size(_Written, int):
    """An int of bytes that remembers how it was written ("50M")."""

    def __new__(cls, value: Any) -> "Size":
        obj = int.__new__(cls, parse_size(value))
        obj.text = value if isinstance(value, str) else str(int(value))
        return obj


class Duration(_Written, float):
    """Seconds as a float that remembers how it was written ("5m")."""

    def __new__(cls, value: Any) -> "Duration":
        obj = float.__new__(cls, parse_duration(value))
        obj.text = value if isinstance(value, str) else str(value)
        return obj


Port = Annotated[int, Field(ge=0, le=65535)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSection(Section):
    hostname: str = "mail.example.test"
    domain: str = "example.test"  # the primary domain: bare local parts log in here


class ListenSection(Section):
    address: str = "0.0.0.0"
    smtp: Port = 25
    submission: Port = 587
    smtps: Port = 465
    pop3: Port = 110
    pop3s: Port = 995
    imap: Port = 143
    imaps: Port = 993
    http: Port = 80
    https: Port = 0     # the web over TLS (init writes 443, or 8443 for a plain user); 0: off


class DeliverySection(Section):
    relayhost: str = ""
    nameservers: list[str] = []
    smtp_port: Port = 25
    retry_intervals: list[Duration] = Field(
        default_factory=lambda: [Duration(v) for v in ("5m", "10m", "30m", "1h", "2h", "4h")],
        min_length=1)
    max_queue_time: Duration = Duration("5d")
    concurrency: int = Field(100, ge=1, le=10000)
    per_domain_concurrency: int = Field(10, ge=1, le=1000)
    connect_timeout: Duration = Duration("30s")
    command_timeout: Duration = Duration("5m")


class LimitsSection(Section):
    max_message_size: Size = Size("50M")
    max_recipients: int = Field(100, ge=1, le=100000)
    max_unknown_recipients: int = Field(5, ge=1, le=100000)  # per SMTP session, then 421
    default_quota: Size = Size("1G")
    max_line_length: int = Field(4096, ge=512, le=1_000_000)
    max_header_size: Size = Size("1M")
    max_unknown_commands: int = Field(10, ge=1, le=1000)
    max_connections_per_ip: int = Field(50, ge=1, le=100000)
    listen_backlog: int = Field(1024, ge=16, le=65535)  # connections waiting to be accepted
    auth_failures: int = Field(5, ge=1, le=1000)       # failed logins per client IP ...
    auth_window: Duration = Duration("10m")           # ... within this window, then refused
    auth_queue: int = Field(16, ge=0, le=10000)       # password checks waiting per process
    idle_timeout: Duration = Duration("5m")
    data_timeout: Duration = Duration("10m")


class PolicySection(Section):
    allow_sender_mismatch: bool = False
    allow_plaintext_auth: bool = False  # POP3/IMAP logins without TLS from non-loopback clients


class AntispamSection(Section):
    """The spam checks (pipeline.registry builds them, pipeline.decide sums them)."""

    enabled: bool = True
    junk_score: float = Field(6.0, ge=0)       # at or above: the recipient's Junk folder
    reject_score: float = Field(15.0, ge=0)    # at or above: 550 5.7.1 at the end of DATA
    dnsbl: list[str] = []                      # DNSBL zones asked for the client's address
    dnsbl_action: Literal["reject", "score"] = "reject"
    fingerprint_threshold: int = Field(50, ge=0, le=10_000_000)   # 0: off
    fingerprint_window: Duration = Duration("1h")
    fingerprint_internal: bool = True          # count authenticated senders' mail too
    bayes: bool = True                         # the trainable score
    # Its model's bound (deliveragent, hourly): a token neither trained nor
    # met in scored mail for bayes_expire_after (0: never by age) goes when
    # seen in at most bayes_expire_count messages; a model over
    # bayes_max_tokens (0: no bound) loses its least recently seen.
    bayes_expire_after: Duration = Duration("90d")
    bayes_expire_count: int = Field(2, ge=0, le=1_000_000)
    bayes_max_tokens: int = Field(1_000_000, ge=0)

    @field_validator("dnsbl")
    @classmethod
    def _zones(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for zone in v:
            z = zone.strip().lower().removesuffix(".")
            if not _ZONE_RE.fullmatch(z) or len(z) > 253:
                raise ValueError(f"{zone!r} is not a DNS zone name (e.g. zen.spamhaus.org)")
            if z not in out:
                out.append(z)
        return out

    @field_validator("reject_score")
    @classmethod
    def _above_junk(cls, v: float, info: ValidationInfo) -> float:
        junk = info.data.get("junk_score")
        if v and junk and v < junk:
            raise ValueError(f"{v:g} is below junk_score ({junk:g}): mail would be refused "
                             "before it could go to Junk; use a value at or above it, or 0 "
                             "for no refusal by score")
        return v


class AntivirusSection(Section):
    clamd: str = ""                                   # "unix:/path" or "HOST:PORT"; empty: off
    timeout: Duration = Duration("30s")               # per message
    on_error: Literal["tempfail", "accept", "reject"] = "tempfail"
    stream_max: Size = Size("25M")                    # clamd's StreamMaxLength
    connections: int = Field(10, ge=1, le=1000)       # to clamd per process (its MaxThreads)
    attachments: Literal["reject", "score", "off"] = "reject"  # dangerous types, bombs
    max_depth: int = Field(3, ge=0, le=20)            # archives inside archives
    max_ratio: int = Field(100, ge=2, le=100000)      # expanded / compressed, per member
    max_expanded: Size = Size("100M")                 # unpacked bytes per message

    @field_validator("clamd")
    @classmethod
    def _clamd_address(cls, v: str) -> str:
        v = v.strip()
        if v and not (v.startswith(("unix:/", "/")) or re.fullmatch(r"\[?[\w.:-]*\]?:\d+", v)):
            raise ValueError(f"{v!r} is not a clamd address: use unix:/path/to/socket or HOST:PORT")
        return v


class AuthenticationSection(Section):
    dkim_sign: bool = True     # outbound mail from local domains is DKIM-signed
    spf: bool = True           # inbound (port 25): SPF checked
    dkim_verify: bool = True   # inbound: every DKIM signature verified
    dmarc: bool = True         # inbound: the From domain's DMARC policy applied
    srs: bool = True           # forwards to remote addresses get an SRS0 envelope sender


class WorkersSection(Section):
    smtp: int = Field(2, ge=1, le=64)
    pop3: int = Field(2, ge=1, le=64)
    imap: int = Field(2, ge=1, le=64)
    web: int = Field(1, ge=1, le=64)
    deliveragent: int = Field(2, ge=1, le=16)


class StorageSection(Section):
    # SQLAlchemy URL; empty: SQLite in DIR/data/coremail.db; "memory:" a
    # throw-away MemoryStore per process (experiments only: not durable).
    database: str = ""
    # The message files; empty: DIR/data/blobs. Several nodes: a directory
    # every node mounts (NFS, CephFS, ...), with the same path on each.
    blobs: str = ""


class LogSection(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class TraceSection(Section):
    enabled: bool = True             # record the message trace (`coremail trace`)
    keep: Duration = Duration("30d")  # then its events are purged


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COREMAIL_", env_nested_delimiter="__", extra="forbid", frozen=True,
        case_sensitive=False)

    server: ServerSection = ServerSection()
    listen: ListenSection = ListenSection()
    delivery: DeliverySection = DeliverySection()
    limits: LimitsSection = LimitsSection()
    policy: PolicySection = PolicySection()
    antispam: AntispamSection = AntispamSection()
    antivirus: AntivirusSection = AntivirusSection()
    authentication: AuthenticationSection = AuthenticationSection()
    workers: WorkersSection = WorkersSection()
    storage: StorageSection = StorageSection()
    log: LogSection = LogSection()
    trace: TraceSection = TraceSection()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
        msg = f"must be one of {err['ctx']['expected']}"
    env = "COREMAIL_" + "__".join(str(p) for p in err["loc"]).upper()
    where = f" (from the environment variable {env})" if env in os.environ else ""
    return f"{key}: {msg.removeprefix('Value error, ')}{where}"


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run `coremail init` first") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def build_settings(data: dict, env: dict[str, str] | None = None) -> Settings:
    """Validate `data` (TOML tables) plus the environment into Settings."""
    saved = None
    if env is not None:  # tests pass an explicit environment
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
    try:
        return Settings(**data)
    except ValidationError as e:
        described = [_describe(err) for err in e.errors()]
        problems = dict(d.split(": ", 1) for d in described if ": " in d)
        lines = "\n  ".join(described)
        raise ConfigError(f"bad configuration:\n  {lines}", problems) from None
    finally:
        if saved is not None:
            os.environ.clear()
            os.environ.update(saved)


def load_settings(home: Path) -> Settings:
    return build_settings(read_toml(Path(home) / CONFIG_RELATIVE))


class ConfigWatcher:
    """Holds the current Settings of a running process and reloads them when
    coremail.toml changes (checked by `poll()`, which services call every
    second). A broken file keeps the last good settings and reports why."""

    def __init__(self, home: Path, settings: Settings | None = None):
        self.path = Path(home) / CONFIG_RELATIVE
        self._stamp = self._stat()
        self.current = settings if settings is not None else load_settings(home)
        self.last_error: str | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        # The inode too: `config set` replaces the file, and two sets in one
        # clock tick may leave the same mtime and size.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def poll(self) -> bool:
        """Reload if the file changed; True when new settings took effect."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.current = build_settings(read_toml(self.path))
        except ConfigError as e:
            self.last_error = str(e)
            return False
        self.last_error = None
        return True
