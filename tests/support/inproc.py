"""A real protocol service (smtp, pop3, imap...) running inside the test
process on free loopback ports. Its event loop runs on a background thread,
so tests are plain synchronous code driving it with blocking clients
(smtplib, poplib, imaplib, raw sockets, external tools).

`InProcService` does the common part: a ServiceContext on an initialised
home, the service from its factory, one socket per listener bound to port 0,
a thread-safe log buffer, and store helpers (add_user, deliver, folders).
Each protocol's conftest subclasses it for its own defaults and clients;
`home_fixture` and `service_fixture` build the usual pytest fixtures.
"""
from __future__ import annotations

import asyncio
import importlib
import io
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from coremail.app import SERVICES, ServiceContext
from coremail.config import CONFIG_RELATIVE, ConfigWatcher, build_settings, read_toml
from coremail.obs.log import Log, parse_line
from coremail.proto.listen import bind_socket
from coremail.services.accounts import Accounts
from coremail.store import open_store
from coremail.store.interfaces import Delivered, Delivery

from tests.support.home import init_test_home

DOMAIN = "example.test"
LOOPBACK = "127.0.0.1"
# Settings that ignore the home's coremail.toml: only the listen address.
LOOPBACK_ONLY = {"listen": {"address": LOOPBACK}}


class LockedStream(io.StringIO):
    """A log stream written by the service thread and read by the test."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            return super().write(s)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


def service_factory(name: str) -> Callable[[ServiceContext], object]:
    """The factory the supervisor would use for service `name` (coremail.app.SERVICES)."""
    module, _, attr = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


class InProcService:
    """One service on its own event loop thread. Subclasses set the class
    attributes; the constructor's arguments override them."""

    name: str = ""                      # service name: log name and SERVICES key
    listener_names: Sequence[str] = ()  # first one is `.port`
    base_settings: dict | None = None   # None: the home's coremail.toml, followed live
    log_level: str = "info"
    password: str = "secret-pw-1"       # add_user's default password

    def __init__(self, home: Path, service: str | Callable | None = None,
                 listeners: Sequence[str] | None = None, *, settings: dict | None = None,
                 log_level: str | None = None, domain: str = DOMAIN, start_timeout: float = 10,
                 address: str = LOOPBACK):
        if isinstance(service, str):
            self.name = service
        factory = service if callable(service) else service_factory(self.name)
        self.listener_names = tuple(listeners if listeners is not None else self.listener_names)
        settings = settings if settings is not None else self.base_settings
        self.home = Path(home)
        if settings is not None and "storage" not in settings:
            # fixed settings still use the home's own store (PostgreSQL: tests/support/testdb.py)
            settings = {**settings, "storage": read_toml(self.home / CONFIG_RELATIVE)["storage"]}
        self.domain = domain
        self.logbuf = LockedStream()
        config = (ConfigWatcher(self.home) if settings is None
                  else ConfigWatcher(self.home, build_settings(settings)))
        store = open_store(self.home, config.current)
        self.ctx = ServiceContext(self.home, config, store,
                                  Log(self.name, self.logbuf, log_level or self.log_level))
        self.accounts = Accounts(store, domain, 0)
        self.users: dict[str, object] = {}
        self.service = factory(self.ctx)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # address "::": one dual-stack socket, where IPv4 clients appear as ::ffff:a.b.c.d
        sockets = {n: bind_socket(address, 0, n) for n in self.listener_names}
        self.ports = {n: s.getsockname()[1] for n, s in sockets.items()}
        try:
            self.call(self.service.start(sockets), start_timeout)
        except BaseException:
            self._stop_loop()
            store.close()
            raise

    # -- running
    @property
    def port(self) -> int:
        return self.ports[self.listener_names[0]]

    @property
    def store(self):
        return self.ctx.store

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the service's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 5, *, forget_users: bool = False) -> None:
        """Stop the service (sessions get `timeout` seconds), then its loop and
        store; with forget_users, first undo add_user and failed-login records
        so the home can serve the next test."""
        try:
            self.call(self.service.stop(timeout))
        finally:
            self._stop_loop()
            try:
                if forget_users:
                    self.forget_users()
            finally:
                self.store.close()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()

    def forget_failed_logins(self) -> None:
        """The throttle's records: DIR/run/authfail, or the shared store's rows."""
        for p in (self.home / "run" / "authfail").glob("*"):
            p.unlink()
        if self.store.shared:
            self.store.auth_failures_clear()

    def forget_users(self) -> None:
        self.forget_failed_logins()
        for address in self.users:
            try:
                self.accounts.delete_user(address)
            except Exception:
                pass
        self.users.clear()

    def settings(self, **sections: dict) -> None:
        """Change settings live, as `coremail config set` would."""
        cur = self.ctx.config.current.model_dump(mode="json")
        for section, values in sections.items():
            cur[section].update(values)
        self.ctx.config.current = build_settings(cur)

    def log_lines(self, event: str | None = None) -> list[dict]:
        """The service's log records with this event (default: `<name>.session`)."""
        event = event or f"{self.name}.session"
        lines = map(parse_line, self.logbuf.text().splitlines())
        return [d for d in lines if d.get("event") == event]

    # -- the store
    def add_user(self, address: str, password: str | None = None, **kw):
        user = self.accounts.add_user(address, password if password is not None else self.password,
                                      **kw)
        self.users[address] = user
        return user

    def put(self, address: str, data: bytes, **delivery) -> Delivered:
        """Store a message straight into a mailbox (Delivery's fields as keywords)."""
        user = self.store.get_user(address)
        blob = self.store.blobs.write(data)
        [res] = self.store.deliver([Delivery(user.id, blob, **delivery)])
        return res

    def folder(self, address: str, name: str = "INBOX"):
        user = self.store.get_user(address)
        return self.store.get_folder(user.id, name)

    def messages(self, address: str, name: str = "INBOX"):
        return self.store.list_messages(self.folder(address, name).id)


def home_fixture(prefix: str, *, scope: str = "module"):
    """A fixture: one initialised home per `scope` (init costs an argon2 hash
    and a migration). Assign it in a conftest, e.g. `_home = home_fixture("pop3home")`."""

    @pytest.fixture(scope=scope)
    def _home(tmp_path_factory):
        return init_test_home(tmp_path_factory.mktemp(prefix))
    return _home


def service_fixture(cls: type[InProcService], *, home: str = "_home", scope: str = "function",
                    stop_timeout: float = 2, forget_users: bool = True, **options):
    """A fixture running `cls(<the `home` fixture>, **options)` for each `scope`;
    by default a fresh service per test on the module's home, its users and
    failed-login records removed afterwards."""

    @pytest.fixture(scope=scope)
    def _service(request):
        srv = cls(request.getfixturevalue(home), **options)
        yield srv
        srv.stop(stop_timeout, forget_users=forget_users)
    return _service
