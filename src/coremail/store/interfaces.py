"""The store's narrow interface: what protocol servers, services and the
queue may ask of storage, and the typed records they get back.

Implementations: `store.sql.store.SqlStore` (SQLite embedded, PostgreSQL
for several nodes) and `store.memory.MemoryStore` (for fast unit tests). Message bytes are blobs behind `Store.blobs` (the `Blobs`
interface: files today, an object store later); rows point at blobs by id and
nothing outside the store sees a file path. Every method is synchronous and
short: async callers run them in a worker thread.

A message removed from a folder (expunge, move, delete) keeps its blob while
a live session may still show it (RFC 2180 4.1): removals are recorded with
the folder's modseq, each process publishes the (folder, modseq) its sessions
last synchronised to (`publish_views`), and `purge_removed` deletes a blob
only when no live view is older than its removal and no row refers to it.
The same removal records the UIDs it took with that modseq (`vanished_since`,
for QRESYNC's VANISHED), kept for a bounded time (`trim_vanished`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Literal, Protocol, Sequence

from ..obs.trace import TraceEvent

SPECIAL_FOLDERS: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"),
    ("Junk", "\\Junk"), ("Trash", "\\Trash"))


class StoreError(Exception):
    """A storage-level refusal with its protocol meaning."""

    code = 451
    enhanced = "4.3.0"

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class NotFound(StoreError):
    code, enhanced = 550, "5.1.1"


class AlreadyExists(StoreError):
    code, enhanced = 550, "5.1.0"


class QuotaExceeded(StoreError):
    code, enhanced = 552, "5.2.2"


class BlobMissing(NotFound):
    """The message's bytes are gone (expunged and removed meanwhile)."""


class StorageFull(StoreError):
    """The disk or its inodes are full: temporary, never a 5xx."""

    code, enhanced = 452, "4.3.1"


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class User:
    id: int
    address: str
    domain: str
    name: str
    password_hash: str
    quota: int          # bytes; 0 = unlimited
    used_bytes: int
    used_messages: int
    enabled: bool
    admin: bool


@dataclass(frozen=True, slots=True)
class Alias:
    address: str
    target: str


@dataclass(frozen=True, slots=True)
class Forward:
    user_id: int
    target: str
    keep: bool


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    recent_uid: int     # UIDs up to this one have been shown as \Recent (claim_recent)
    messages: int = 0
    unseen: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class BlobRef:
    id: str
    size: int


@dataclass(frozen=True, slots=True)
class Message:
    id: int             # global, stable: POP3 UIDL and web links derive from it
    folder_id: int
    uid: int            # per folder, strictly increasing, never reused
    blob_id: str
    size: int
    internaldate: float
    flags: frozenset[str]
    modseq: int
    meta: dict | None = None  # parsed once at delivery (envelope, structure, summary)


@dataclass(slots=True)
class Delivery:
    """One message to put in one user's folder, part of a group commit."""

    user_id: int
    blob: BlobRef
    folder: str = "INBOX"
    flags: frozenset[str] = frozenset()
    internaldate: float | None = None
    meta: dict | None = None
    check_quota: bool = True


@dataclass(frozen=True, slots=True)
class Queued:
    """A new outbound queue entry, committed in the same transaction as a
    batch of deliveries (a message's local copies and its remote recipients
    are stored together or not at all)."""

    queue_id: str
    blob: BlobRef
    sender: str
    recipients: tuple[str, ...]
    kind: str = "out"


@dataclass(frozen=True, slots=True)
class Delivered:
    message_id: int
    folder_id: int
    uid: int


@dataclass(frozen=True, slots=True)
class QueueRecipient:
    address: str
    status: Literal["pending", "sent", "failed"] = "pending"
    last_error: str = ""
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: str
    blob_id: str
    sender: str
    created: float
    next_attempt: float
    attempts: int
    last_error: str
    recipients: tuple[QueueRecipient, ...] = field(default_factory=tuple)
    size: int = 0
    kind: str = "out"      # "out": remote delivery; "bounce": a DSN being sent


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One `coremail filter` rule. kind: ip, sender, keyword, header;
    action: reject, junk, allow or score (with `points`); user: "" for the
    whole server, else the address whose mail it applies to."""

    id: int
    kind: str
    pattern: str
    action: str
    points: float = 0.0
    user: str = ""
    note: str = ""
    hits: int = 0
    last_hit: float | None = None
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class BayesItem:
    """One message to train into a model of the intelligent score: its
    digest (what identifies it, 32 hex digits), its class and its hashed
    tokens (each once)."""

    digest: str
    spam: bool
    tokens: Sequence[int]


# What bayes_train did with each item: trained anew, moved from the other
# class (the earlier training undone), or already trained so (nothing).
BayesOutcome = Literal["learnt", "relearnt", "known"]
GLOBAL_MODEL = 0      # the owner of the administrator's model; users own theirs by id


def bayes_day(t: float) -> int:
    """The day a bayes token was seen, as stored: days since the Unix epoch."""
    return int(t // 86400)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One administrative change: who made it, from where, when, on what,
    and the value before and after (empty where there was none)."""

    id: int
    at: float
    actor: str
    ip: str
    action: str        # e.g. "user.add", "setting.set", "service.restart"
    target: str        # the address, domain, key, queue id or service
    old: str = ""
    new: str = ""


@dataclass(frozen=True, slots=True)
class DomainUsage:
    name: str
    users: int
    used_bytes: int


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node of the system as its supervisor last reported it: the
    services (name, state, pid, addresses) and when it last beat."""

    hostname: str
    started: float
    heartbeat: float
    services: tuple[dict, ...] = ()


class FolderChanges(Protocol):
    """Folder change notifications from every node (PostgreSQL LISTEN):
    `wait` blocks up to `timeout` and returns the ids of folders whose
    modseq or uidnext moved (empty on timeout); run it in a thread."""

    def wait(self, timeout: float) -> set[int]: ...
    def close(self) -> None: ...


FlagMode = Literal["set", "add", "remove"]

# A removed message's blob outlives its removal by at least this long, so a
# view published a little late (processes publish within seconds) still holds it.
PURGE_GRACE = 120.0


# QRESYNC's record of expunged UIDs (vanished_since) is kept this long and at
# most this many removals per folder; past that a client resynchronising from
# an older modseq is told every UID the folder no longer has (RFC 7162 3.2.5.1).
VANISHED_KEEP = 30 * 86400.0
VANISHED_KEEP_ROWS = 10000


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """(lo, hi) ranges sorted and merged where they touch or overlap."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """UIDs as merged ranges: 1 2 3 7 -> [(1, 3), (7, 7)]."""
    return merge_ranges((u, u) for u in uids)


class Blobs(Protocol):
    """Message bytes by id. Writes are durable only after `sync` (or
    `write(sync=True)`); readers get BlobMissing for a blob that is gone."""

    def write(self, chunks: bytes | Iterable[bytes], *, blob_id: str | None = None,
              sync: bool = True) -> BlobRef: ...
    def sync(self, refs: Iterable[BlobRef]) -> None: ...
    def open(self, blob_id: str) -> BinaryIO: ...   # unbuffered, positioned at 0
    def read(self, blob_id: str, start: int = 0, length: int | None = None) -> bytes: ...
    def size(self, blob_id: str) -> int: ...
    def delete(self, blob_ids: Iterable[str]) -> None: ...
    def clean_tmp(self, older_than: float = 3600) -> int: ...


class Store(Protocol):
    """What the rest of the system may ask of storage. Addresses passed in are
    already normalised (see mail.address)."""

    blobs: Blobs
    # True when several hosts may use this store at once (PostgreSQL):
    # what one host kept in DIR/run (maildrop locks, failed logins) must
    # then be asked of the store (the methods under "several nodes").
    shared: bool

    # -- lifecycle
    def close(self) -> None: ...

    # -- domains
    def add_domain(self, name: str) -> Domain: ...
    def delete_domain(self, name: str) -> None: ...
    def get_domain(self, name: str) -> Domain | None: ...
    def list_domains(self) -> list[Domain]: ...

    # -- users
    def add_user(self, address: str, *, password_hash: str, quota: int, name: str = "",
                 admin: bool = False) -> User: ...
    def get_user(self, address: str) -> User | None: ...
    def get_user_by_id(self, user_id: int) -> User | None: ...
    def list_users(self, domain: str | None = None) -> list[User]: ...
    def update_user(self, address: str, **fields: object) -> User: ...
    def delete_user(self, address: str) -> None: ...

    # One page of users whose address or name contains `query` (any case),
    # ordered by address, and how many match in all (the webadmin's list).
    def find_users(self, query: str = "", domain: str | None = None, *, offset: int = 0,
                   limit: int = 50) -> tuple[list[User], int]: ...
    def domain_usage(self) -> list[DomainUsage]: ...
    # Every auto-forward with its user's address, ordered by address.
    def list_forwards(self) -> list[tuple[str, Forward]]: ...

    # -- the audit log of administrative changes
    def audit_add(self, *, actor: str, ip: str, action: str, target: str, old: str = "",
                  new: str = "", at: float | None = None) -> AuditEntry: ...
    # Newest first; every filter is optional (action matches as a prefix,
    # text anywhere in target, old or new).
    def audit_list(self, *, actor: str = "", action: str = "", text: str = "",
                   since: float | None = None, offset: int = 0,
                   limit: int = 50) -> tuple[list[AuditEntry], int]: ...

    # -- aliases and forwards
    def add_alias(self, address: str, target: str) -> Alias: ...
    def delete_alias(self, address: str, target: str | None = None) -> int: ...
    def list_aliases(self, domain: str | None = None) -> list[Alias]: ...
    def alias_targets(self, address: str) -> list[str]: ...
    def set_forward(self, user_id: int, target: str, keep: bool) -> None: ...
    def clear_forward(self, user_id: int) -> bool: ...
    def get_forward(self, user_id: int) -> Forward | None: ...

    # -- folders
    def list_folders(self, user_id: int, *, counts: bool = False) -> list[Folder]: ...
    def get_folder(self, user_id: int, name: str) -> Folder | None: ...
    def get_folder_by_id(self, folder_id: int) -> Folder | None: ...
    def folder_versions(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int]]: ...
    # folder id -> (messages, unseen, size) of those folders.
    def folder_counts(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]: ...
    def create_folder(self, user_id: int, name: str, special_use: str | None = None) -> Folder: ...
    def rename_folder(self, user_id: int, old: str, new: str) -> None: ...
    def delete_folder(self, user_id: int, name: str) -> None: ...
    # Subscriptions are names (RFC 3501 6.3.6): any name, existing or not;
    # CREATE does not subscribe, DELETE does not unsubscribe, RENAME moves them.
    def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None: ...
    def list_subscriptions(self, user_id: int) -> list[str]: ...
    # \Recent (RFC 3501 2.3.2): raise the folder's recent mark to top_uid
    # atomically and return the mark before; UIDs in (returned, top_uid] are
    # the caller's (one session) to show as \Recent.
    def claim_recent(self, folder_id: int, top_uid: int) -> int: ...

    # -- messages
    # One transaction: the deliveries (each may be refused on its own, e.g.
    # over quota) and the new queue entries (AlreadyExists refuses them all).
    # all_or_none (IMAP MULTIAPPEND): one refusal refuses every delivery and
    # nothing is stored.
    def deliver(self, deliveries: Sequence[Delivery], queued: Sequence[Queued] = (), *,
                all_or_none: bool = False) -> list[Delivered | StoreError]: ...
    def list_messages(self, folder_id: int, *, since_uid: int = 0,
                      with_meta: bool = False) -> list[Message]: ...
    # One page of a folder, newest (highest uid) first, with meta: the
    # webmail's list. before_uid: only uids below it (keyset paging); offset
    # skips that many more.
    def page_messages(self, folder_id: int, *, limit: int, offset: int = 0,
                      before_uid: int | None = None) -> list[Message]: ...
    def message_index(self, folder_id: int, *, changed_since: int = 0) -> list[tuple]: ...
    def message_uids(self, folder_id: int) -> list[int]: ...
    def get_messages(self, folder_id: int, uids: Sequence[int]) -> list[Message]: ...
    def get_message(self, message_id: int) -> Message | None: ...
    def set_flags(self, folder_id: int, uids: Sequence[int], flags: frozenset[str],
                  mode: FlagMode, *, unchanged_since: int | None = None
                  ) -> list[Message]: ...
    def expunge(self, folder_id: int, uids: Sequence[int]) -> list[int]: ...
    def delete_messages(self, user_id: int, message_ids: Sequence[int]) -> int: ...
    def copy_messages(self, folder_id: int, uids: Sequence[int], dest_folder_id: int, *,
                      move: bool = False) -> list[tuple[int, int]]: ...

    # -- views: what live sessions still show (RFC 2180 4.1). `owner` is one
    # process ("host:pid:token"); views maps folder id -> the lowest modseq
    # its sessions are synchronised to; the rows count until `until` (a lease
    # the process renews). publish_views replaces all of the owner's rows.
    def publish_views(self, owner: str, views: dict[int, int], until: float) -> None: ...
    def drop_views(self, owner: str) -> None: ...
    # Forget removals older than `grace` that no live view predates, and
    # delete the blobs nothing refers to any more; returns how many.
    def purge_removed(self, now: float | None = None, grace: float = PURGE_GRACE) -> int: ...

    # -- QRESYNC (RFC 7162): the UIDs removed from a folder at modseqs above
    # `modseq`, as merged ascending (lo, hi) ranges; None when the record no
    # longer reaches back that far (the caller then reports every UID the
    # folder lacks). trim_vanished forgets removals older than `before` and
    # all but the newest `keep` per folder; returns how many records went.
    def vanished_since(self, folder_id: int, modseq: int) -> list[tuple[int, int]] | None: ...
    def trim_vanished(self, before: float, keep: int = VANISHED_KEEP_ROWS) -> int: ...

    # -- the intelligent score: per model (GLOBAL_MODEL or a user id) the
    # number of spam and ham messages trained, and per hashed token the
    # number of spam and ham messages it was seen in. bayes_train applies a
    # batch in one transaction: never the same message twice in one class,
    # and a message trained in the other class moves (its counts subtracted).
    # A user's model goes with the user.
    def bayes_totals(self, owners: Sequence[int]) -> dict[int, tuple[int, int]]: ...
    # The totals and, for the given hashed tokens, {(owner, token): (spam, ham)},
    # in one read (counts empty while every model is empty).
    def bayes_lookup(self, owners: Sequence[int], tokens: Sequence[int]
                     ) -> tuple[dict[int, tuple[int, int]],
                                dict[tuple[int, int], tuple[int, int]]]: ...
    def bayes_train(self, owner: int, items: Sequence[BayesItem], now: float | None = None
                    ) -> list[BayesOutcome]: ...
    def bayes_size(self, owner: int) -> int: ...     # distinct tokens in the model
    # Expiry keeps models bounded. Each token carries the day it was last
    # trained or met in a scored message (bayes_touch, batched by the check).
    # bayes_expire removes, in every model, the tokens not seen since `before`
    # and counted in at most `rare` messages; then, from a model still over
    # `largest` tokens (0: no bound), the least recently seen (fewest counts
    # first) until it fits. Returns how many went.
    def bayes_touch(self, seen: Sequence[tuple[int, int]], now: float | None = None) -> None: ...
    def bayes_expire(self, before: float, rare: int, largest: int) -> int: ...

    # -- settings (scope "" is global, else a user address)
    def get_setting(self, scope: str, key: str) -> str | None: ...
    def set_setting(self, scope: str, key: str, value: str | None) -> None: ...

    # -- filter rules and the fingerprint counter (pipeline.lists, pipeline.fingerprint)
    def add_filter_rule(self, kind: str, pattern: str, action: str, *, points: float = 0.0,
                        user: str = "", note: str = "") -> FilterRule: ...
    def list_filter_rules(self) -> list[FilterRule]: ...
    def delete_filter_rule(self, rule_id: int) -> bool: ...
    # Add counted hits {rule id: n} (batched by the caller); gone rules are ignored.
    def add_filter_hits(self, hits: dict[int, int], now: float | None = None) -> None: ...
    # Sum of the counts of each key over slots >= since.
    def fingerprint_counts(self, keys: Sequence[str], since: int) -> dict[str, int]: ...
    # Add {(key, slot): n}; forget slots < forget_before in the same transaction.
    def fingerprint_add(self, counts: dict[tuple[str, int], int], forget_before: int) -> None: ...

    # -- outbound queue
    def enqueue(self, *, queue_id: str, blob: BlobRef, sender: str, recipients: Sequence[str],
                kind: str = "out") -> QueueEntry: ...
    def queue_list(self) -> list[QueueEntry]: ...
    def queue_get(self, queue_id: str) -> QueueEntry | None: ...
    def queue_update(self, queue_id: str, *, recipients: Sequence[QueueRecipient],
                     next_attempt: float, last_error: str) -> None: ...
    def queue_delete(self, queue_id: str) -> bool: ...
    # Many finished entries in one transaction (the deliveragent's group
    # commit); returns how many were still there.
    def queue_delete_many(self, queue_ids: Sequence[str]) -> int: ...
    # Due now: every entry, or only queue_id; returns how many were waiting.
    def queue_flush(self, now: float, queue_id: str | None = None) -> int: ...
    # -- queue leases (the deliveragent): claim due, unleased entries for
    # `owner` until `until`; queue_update ends the lease of its entry.
    def queue_claim(self, owner: str, now: float, until: float,
                    limit: int) -> list[QueueEntry]: ...
    def queue_renew(self, owner: str, until: float) -> int: ...
    def queue_release(self, owner: str, queue_id: str | None = None) -> int: ...
    def queue_lease_owners(self) -> list[str]: ...
    def queue_mark(self, queue_id: str, recipients: Sequence[QueueRecipient]) -> None: ...

    # -- the message trace (obs.trace): events written in batches; found by a
    # queue id, Message-ID or address (any case, "<>" optional): every event
    # of the `limit` newest messages with that key seen between `since` and
    # `until`, oldest first; subject words are keys too (store.trace_keys).
    def trace_add(self, events: Sequence[TraceEvent]) -> None: ...
    def trace_find(self, term: str, *, since: float = 0.0, until: float | None = None,
                   limit: int = 50) -> list[TraceEvent]: ...
    def trace_purge(self, before: float) -> int: ...   # events older than `before`; how many

    # -- several nodes (store/sql/nodes.py). Leases: a named lock held by
    # `owner` ("host:pid:token") until `until`; an expired one may be taken.
    def lease_acquire(self, name: str, owner: str, until: float,
                      now: float | None = None) -> bool: ...
    def lease_renew(self, owner: str, until: float) -> int: ...
    def lease_release(self, owner: str, name: str | None = None) -> int: ...
    # Failed logins per client address (services.login's shared throttle):
    # add one, forgetting every failure older than forget_before; the times
    # of an address's failures at or after `since`; clear forgets them all.
    def auth_failure_add(self, ip: str, at: float, forget_before: float) -> None: ...
    def auth_failures(self, ip: str, since: float) -> list[float]: ...
    def auth_failures_clear(self) -> int: ...
    # The nodes: each supervisor's heartbeat with its services' states.
    def node_beat(self, hostname: str, started: float, services: Sequence[dict],
                  now: float | None = None) -> None: ...
    def node_list(self) -> list[NodeState]: ...
    # Files every node needs alike (conf/tls, conf/dkim, conf/srs.secret),
    # by their path under conf/: name -> (content, updated).
    def shared_file_put(self, name: str, content: bytes, updated: float) -> None: ...
    def shared_files(self) -> dict[str, tuple[bytes, float]]: ...
    # Web sessions by the SHA-256 of their token: (user id, csrf, expires),
    # or None; put forgets the sessions expired before `now`.
    def web_session_put(self, key: str, user_id: int, csrf: str, expires: float,
                        now: float) -> None: ...
    def web_session_get(self, key: str) -> tuple[int, str, float] | None: ...
    def web_session_delete(self, key: str) -> None: ...
    # Notifications of folder changes from every node, or None where the
    # store has none (SQLite, memory: IMAP IDLE polls folder_versions).
    def folder_changes(self) -> FolderChanges | None: ...
