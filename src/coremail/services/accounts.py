"""Accounts use-cases shared by userutil, the web and the protocol servers:
domains, users, aliases, forwards and login. Input addresses are normalised
here (mail.address), so every front end refuses the same things in the same words."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import parse_size
from ..mail.address import (AddressError, Address, login_address, normalise_domain,
                            parse_address, parse_mailbox_address)
from ..store.interfaces import AlreadyExists, DomainUsage, NotFound, Store, StoreError, User
from .passwords import hash_password, verify_password


class AccountError(Exception):
    """A refusal worded for the person who asked (userutil prints it)."""


def _mailbox(raw: str) -> Address:
    try:
        return parse_mailbox_address(raw)
    except AddressError as e:
        raise AccountError(f"malformed address {raw!r}: {e}") from None


def _domain(raw: str) -> str:
    try:
        return normalise_domain(raw)
    except AddressError as e:
        raise AccountError(f"malformed domain {raw!r}: {e}") from None


def check_password(pw: str | None) -> None:
    """Refuse a password no one means to set (AccountError)."""
    if pw is None or pw == "":
        raise AccountError("the password is empty")
    if pw != pw.strip():
        raise AccountError("the password starts or ends with a space; that is almost always a mistake")


def _password(pw: str | None) -> str:
    check_password(pw)
    return hash_password(pw)


@dataclass
class Accounts:
    store: Store
    primary_domain: str = ""
    default_quota: int = 0

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except (NotFound, AlreadyExists, StoreError) as e:
            raise AccountError(str(e)) from None

    # -- domains
    def add_domain(self, name: str):
        """A new local domain, with postmaster@ and abuse@ (RFC 5321 4.5.1,
        RFC 2142) routed to the primary domain's admin when there is one."""
        d = self._call(self.store.add_domain, _domain(name))
        admin = f"admin@{self.primary_domain}"
        if self.store.get_user(admin) is not None:
            for role in ("postmaster", "abuse"):
                self.store.add_alias(f"{role}@{d.name}", admin)
        return d

    def delete_domain(self, name: str) -> None:
        self._call(self.store.delete_domain, _domain(name))

    def list_domains(self) -> list[str]:
        return [d.name for d in self.store.list_domains()]

    def domain_usage(self) -> list[DomainUsage]:
        """Each domain with its number of users and the storage they use."""
        return self.store.domain_usage()

    # -- users
    def add_user(self, address: str, password: str, *, quota: int | str | None = None,
                 name: str = "", admin: bool = False) -> User:
        a = _mailbox(address)
        if self.store.get_domain(a.domain) is None:
            raise AccountError(f"the domain {a.domain} is not a local domain; "
                               f"add it with `userutil domain add {a.domain}`")
        if self.store.alias_targets(str(a)):
            raise AccountError(f"{a} is already an alias; delete the alias first")
        q = self.default_quota if quota is None else self._quota(quota)
        return self._call(self.store.add_user, str(a), password_hash=_password(password),
                          quota=q, name=name, admin=admin)

    @staticmethod
    def _quota(value: int | str) -> int:
        try:
            return parse_size(value)
        except ValueError as e:
            raise AccountError(f"bad quota: {e}") from None

    def get(self, address: str) -> User:
        a = _mailbox(address)
        user = self.store.get_user(str(a))
        if user is None:
            raise AccountError(f"no such user: {a}")
        return user

    def set_password(self, address: str, password: str) -> User:
        return self._call(self.store.update_user, str(self.get(address).address),
                          password_hash=_password(password))

    def update(self, address: str, **fields) -> User:
        if "quota" in fields:
            fields["quota"] = self._quota(fields["quota"])
        return self._call(self.store.update_user, self.get(address).address, **fields)

    def delete_user(self, address: str) -> None:
        self._call(self.store.delete_user, self.get(address).address)

    def list_users(self, domain: str | None = None) -> list[User]:
        if domain:
            d = _domain(domain)
            if self.store.get_domain(d) is None:
                raise AccountError(f"the domain {d} is not a local domain")
            return self.store.list_users(d)
        return self.store.list_users()

    def find_users(self, query: str = "", domain: str | None = None, *, page: int = 0,
                   per_page: int = 50) -> tuple[list[User], int]:
        """One page of the users whose address or name contains `query`, and
        how many match in all (bounded queries: fast at any number of users)."""
        return self.store.find_users(query.strip(), _domain(domain) if domain else None,
                                     offset=max(0, page) * per_page, limit=per_page)

    def list_forwards(self):
        """(address, Forward) of every user with an auto-forward."""
        return self.store.list_forwards()

    # -- aliases
    def add_alias(self, alias: str, target: str):
        a = _mailbox(alias)
        try:
            tgt = parse_address(target)
        except AddressError as e:
            raise AccountError(f"malformed target {target!r}: {e}") from None
        if self.store.get_user(str(a)):
            raise AccountError(f"{a} is a user; an alias cannot have the same address")
        if tgt.key == a.key:
            raise AccountError("an alias cannot point at itself")
        if self.store.get_domain(tgt.domain) and not self._local_exists(tgt.key):
            raise AccountError(f"the target {tgt} does not exist in the local domain {tgt.domain}")
        return self._call(self.store.add_alias, str(a), tgt.key if self.store.get_domain(tgt.domain)
                          else str(tgt))

    def _local_exists(self, key: str) -> bool:
        return self.store.get_user(key) is not None or bool(self.store.alias_targets(key))

    def delete_alias(self, alias: str, target: str | None = None) -> int:
        a = _mailbox(alias)
        n = self.store.delete_alias(str(a), target)
        if n == 0:
            raise AccountError(f"no such alias: {a}")
        return n

    def list_aliases(self, domain: str | None = None):
        return self.store.list_aliases(_domain(domain) if domain else None)

    # -- forwards
    def set_forward(self, address: str, target: str, keep: bool) -> None:
        user = self.get(address)
        try:
            tgt = parse_address(target)
        except AddressError as e:
            raise AccountError(f"malformed forward target {target!r}: {e}") from None
        if tgt.key == user.address:
            raise AccountError("a user cannot forward to their own address")
        if self.store.get_domain(tgt.domain) and not self._local_exists(tgt.key):
            raise AccountError(f"the target {tgt} does not exist in the local domain {tgt.domain}")
        self.store.set_forward(user.id, str(tgt), keep)

    def clear_forward(self, address: str) -> bool:
        return self.store.clear_forward(self.get(address).id)

    # -- login (POP3, IMAP, SMTP AUTH, web)
    def authenticate(self, login: str, password: str) -> User | None:
        """The user when the login (full address or bare local part in the
        primary domain) and password match an enabled account; else None.
        Slow on purpose (argon2): call from a thread in async code."""
        try:
            a = login_address(login, self.primary_domain)
        except AddressError:
            verify_password(None, password)
            return None
        user = self.store.get_user(a.key)
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.enabled:
            return None
        return user
