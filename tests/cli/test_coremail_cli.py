"""`coremail init`, `config get/set` and `queue list/flush/delete` through the
installed command (the supervisor commands are tested in tests/supervisor)."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from cryptography import x509

from coremail.config import load_settings
from coremail.services.accounts import Accounts
from coremail.store import open_store
from coremail.store.interfaces import QueueRecipient

from .conftest import Cli, clean_env


def ok(r):
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def refused(r, words: str, code: int | None = None):
    assert r.returncode != 0, (r.args, r.stdout, r.stderr)
    if code is not None:
        assert r.returncode == code, (r.args, r.returncode, r.stderr)
    assert words in r.stderr, (r.args, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stderr


def snapshot(home: Path) -> dict[str, tuple]:
    return {str(p.relative_to(home)): (p.stat().st_mtime_ns, p.stat().st_size,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(home.rglob("*")) if p.is_file()}


def authenticate(home: Path, login: str, password: str):
    settings = load_settings(home)
    store = open_store(home, settings)
    try:
        return Accounts(store, settings.server.domain).authenticate(login, password)
    finally:
        store.close()


# ---------------------------------------------------------------- init
def test_init_generates_a_password_shows_it_once_and_refuses_to_redo(tmp_path):
    cli = Cli(tmp_path / "home")
    out = ok(cli.coremail("init", "--domain", "Example.TEST", "--unprivileged-ports"))
    m = re.search(r"admin account: admin@example\.test\s+password: (\S+)", out)
    assert m, out
    password = m.group(1)
    assert len(password) >= 16
    assert out.count(password) == 1
    assert "unprivileged ports" in out and "smtp 2525" in out

    home = cli.home
    for rel in ("conf/coremail.toml", "data/coremail.db"):
        assert (home / rel).is_file(), rel
    for rel in ("logs", "run", "conf/tls"):
        assert (home / rel).is_dir(), rel
    assert list((home / "conf" / "tls").iterdir())
    # The password is shown, never stored in clear.
    for p in home.rglob("*"):
        if p.is_file():
            assert password.encode() not in p.read_bytes(), p
    s = load_settings(home)
    assert (s.server.domain, s.server.hostname) == ("example.test", "mail.example.test")
    assert (s.listen.smtp, s.listen.submission, s.listen.smtps, s.listen.pop3, s.listen.pop3s,
            s.listen.imap, s.listen.imaps, s.listen.http, s.listen.https) == (
        2525, 2587, 2465, 2110, 2995, 2143, 2993, 8080, 8443)
    assert "# COREMAIL_<SECTION>__<KEY>" in (home / "conf/coremail.toml").read_text()

    # The admin logs in with the full address or the bare local part.
    for login in ("admin", "admin@example.test", "Admin@Example.Test"):
        user = authenticate(home, login, password)
        assert user is not None and user.address == "admin@example.test" and user.admin
    assert authenticate(home, "admin", password + "x") is None

    before = snapshot(home)
    time.sleep(0.02)
    for args in (("--domain", "example.test"), ("--domain", "other.test", "--admin-password", "pw")):
        r = cli.coremail("init", *args)
        refused(r, "already holds a coremail home")
        assert "password" not in r.stdout
    assert snapshot(home) == before


def test_init_with_admin_password_hostname_and_standard_ports(tmp_path):
    cli = Cli(tmp_path / "home")
    out = ok(cli.coremail("init", "--domain", "example.test", "--hostname", "mx.example.org",
                          "--admin-password", "Given-pw-1", "--standard-ports"))
    assert "Given-pw-1" not in out and "password:" not in out
    assert "admin account: admin@example.test" in out
    s = load_settings(cli.home)
    assert s.server.hostname == "mx.example.org"
    assert (s.listen.smtp, s.listen.submission, s.listen.imap, s.listen.http) == (25, 587, 143, 80)
    assert authenticate(cli.home, "admin", "Given-pw-1").admin is True
    assert authenticate(cli.home, "admin@example.test", "Given-pw-1") is not None

    pems = [p for p in (cli.home / "conf" / "tls").iterdir() if b"BEGIN CERTIFICATE" in p.read_bytes()]
    assert pems
    cert = x509.load_pem_x509_certificate(pems[0].read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mx.example.org" in names.get_values_for_type(x509.DNSName)


def test_init_refusals_leave_no_half_made_home(tmp_path):
    cli = Cli(tmp_path / "home")
    bad_domain, empty_pw, spaced_pw = (
        cli.coremail("init", "--domain", "bad..domain"),
        cli.coremail("init", "--domain", "example.test", "--admin-password", ""),
        cli.coremail("init", "--domain", "example.test", "--admin-password", " pw "))
    refused(bad_domain, "bad..domain", code=2)
    refused(empty_pw, "empty", code=2)
    refused(spaced_pw, "space", code=2)
    assert not cli.home.exists() or snapshot(cli.home) == {}
    # After a refusal the same home can still be made.
    ok(cli.coremail("init", "--domain", "example.test", "--admin-password", "pw"))
    assert authenticate(cli.home, "admin", "pw") is not None


# ---------------------------------------------------------------- config
def test_config_get_and_set(cli):
    conf = cli.home / "conf" / "coremail.toml"
    before, after, env = (
        cli.coremail("--home", str(cli.home), "config", "get", "limits.max_message_size",
                     home=False),
        cli.coremail("config", "get", "limits.max_message_size"),
        cli.coremail("config", "get", "limits.max_message_size", home=False,
                     env=clean_env(COREMAIL_HOME=str(cli.home))))
    for r in (before, after, env):
        assert ok(r).strip() == "50M"

    out = ok(cli.coremail("config", "set", "limits.max_message_size", "10M"))
    assert "limits.max_message_size = 10M" in out
    assert 'max_message_size = "10M"  # 552 5.3.4 above it' in conf.read_text()
    assert load_settings(cli.home).limits.max_message_size == 10 * 1024 ** 2

    text = conf.read_bytes()
    got, bad_value, bad_key, bad_get, env_override = cli.start_many(
        "coremail",
        ("config", "get", "limits.max_message_size"),
        ("config", "set", "limits.max_message_size", "huge"),
        ("config", "set", "limits.max_mesage_size", "1M"),
        ("config", "get", "listen.nope"),
        ("config", "set", "listen.smtp", "70000"))
    assert ok(got).strip() == "10M"
    refused(bad_value, "limits.max_message_size", code=2)
    assert "not a size" in bad_value.stderr
    refused(bad_key, "unknown key", code=2)
    refused(bad_get, "unknown key", code=2)
    refused(env_override, "listen.smtp", code=2)
    assert conf.read_bytes() == text                       # refusals changed nothing

    r = cli.coremail("config", "get", "listen.smtp",
                     env=clean_env(COREMAIL_LISTEN__SMTP="2626"))
    assert ok(r).strip() == "2626"                         # the environment wins


def test_config_with_a_broken_file_names_the_key(cli):
    conf = cli.home / "conf" / "coremail.toml"
    conf.write_text(conf.read_text().replace("max_recipients = 100", "max_recipients = 0"))
    r = cli.coremail("config", "get", "limits.max_message_size")
    refused(r, "limits.max_recipients", code=2)


# ---------------------------------------------------------------- queue
def test_queue_list_flush_delete(cli):
    empty, flush0, delete0 = cli.start_many(
        "coremail", ("queue", "list"), ("queue", "flush"), ("queue", "delete", "NOSUCHID"))
    assert "the queue is empty" in ok(empty)
    assert ok(flush0).startswith("0 message(s)")
    refused(delete0, "no queued message NOSUCHID", code=1)

    store = open_store(cli.home, load_settings(cli.home))
    try:
        b1 = store.blobs.write(b"Subject: one\r\n\r\nfirst\r\n")
        b2 = store.blobs.write(b"Subject: two\r\n\r\nsecond\r\n")
        store.enqueue(queue_id="QFRESH000000000001", blob=b1, sender="admin@example.test",
                      recipients=["bob@remote.test", "carol@remote.test"])
        store.enqueue(queue_id="QRETRY000000000002", blob=b2, sender="",
                      recipients=["dave@remote.test"])
        store.queue_update("QRETRY000000000002", recipients=[
            QueueRecipient("dave@remote.test", "pending", "4.2.1 mailbox busy, try later", 1)],
            next_attempt=time.time() + 3600, last_error="4.2.1 mailbox busy, try later")
    finally:
        store.close()

    lines = ok(cli.coremail("queue", "list")).splitlines()
    assert len(lines) == 2
    fresh = next(ln for ln in lines if ln.startswith("QFRESH000000000001"))
    retry = next(ln for ln in lines if ln.startswith("QRETRY000000000002"))
    assert "admin@example.test" in fresh and "bob@remote.test" in fresh
    assert "carol@remote.test" in fresh and "not tried yet" in fresh
    assert "<>" in retry and "dave@remote.test" in retry and "mailbox busy" in retry

    assert ok(cli.coremail("queue", "flush")).startswith("1 message(s)")
    assert "deleted QFRESH000000000001" in ok(cli.coremail("queue", "delete", "QFRESH000000000001"))
    refused(cli.coremail("queue", "delete", "QFRESH000000000001"), "no queued message")

    store = open_store(cli.home, load_settings(cli.home))
    try:
        assert [e.id for e in store.queue_list()] == ["QRETRY000000000002"]
        assert store.queue_get("QRETRY000000000002").next_attempt <= time.time()   # flushed
        assert not store.blobs.path(b1.id).exists()
        assert store.blobs.path(b2.id).exists()
    finally:
        store.close()


@pytest.mark.parametrize("tool", ["coremail", "userutil"])
def test_help_works_without_a_home(tmp_path, tool):
    r = Cli(tmp_path / "nowhere").run(tool, "--help", home=False)
    assert ok(r) and "Usage" in r.stdout
