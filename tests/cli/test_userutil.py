"""`userutil` as an operator runs it: the installed command in a subprocess,
every command of INTERFACE.md, its output, its errors and exit codes."""

from __future__ import annotations

import pytest

from coremail.config import load_settings
from coremail.services.accounts import Accounts
from coremail.store import open_store

from .conftest import ADMIN_PASSWORD, DOMAIN, clean_env


def ok(r):
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def refused(r, words: str, code: int = 1):
    assert r.returncode == code, (r.args, r.returncode, r.stdout, r.stderr)
    assert words in r.stderr, (r.args, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stderr


@pytest.fixture
def accounts(cli):
    """The store as the services see it, opened after the command ran."""
    opened = []

    def get() -> Accounts:
        settings = load_settings(cli.home)
        store = open_store(cli.home, settings)
        opened.append(store)
        return Accounts(store, settings.server.domain, int(settings.limits.default_quota))

    yield get
    for s in opened:
        s.close()


# ---------------------------------------------------------------- users
def test_add_show_list_passwd_del(cli, accounts):
    added, default = cli.start_many(
        "userutil",
        ("add", " Bob.Smith\uff20Example.TEST ", "--password", "pw-1", "--quota", "500M",
         "--name", "Bob Smith"),
        ("add", "carol@example.test", "--password", "pw-2"))
    assert "added bob.smith@example.test (quota 500M)" in ok(added)
    assert "(quota 1G)" in ok(default)                       # limits.default_quota

    show, listing = cli.start_many("userutil", ("show", "BOB.SMITH@example.test"), ("list",))
    show = ok(show)
    assert "address: bob.smith@example.test" in show
    assert "name: Bob Smith" in show and "quota: 500M" in show
    assert "used: 0 bytes in 0 messages" in show
    assert "admin: no" in show and "enabled: yes" in show and "forward: off" in show
    lines = ok(listing).splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [
        "admin@example.test", "bob.smith@example.test", "carol@example.test"]
    assert lines[0].endswith("admin")

    a = accounts()
    user = a.store.get_user("bob.smith@example.test")
    assert (user.quota, user.name) == (500 * 1024 ** 2, "Bob Smith")
    assert a.authenticate("bob.smith@example.test", "pw-1") is not None

    passwd, delete = cli.start_many(
        "userutil", ("passwd", "bob.smith@example.test", "--password", "pw-new"),
        ("del", "carol@example.test"))
    assert "password changed for bob.smith@example.test" in ok(passwd)
    assert "deleted carol@example.test" in ok(delete)
    a = accounts()
    assert a.authenticate("bob.smith@example.test", "pw-1") is None
    assert a.authenticate("Bob.Smith", "pw-new").address == "bob.smith@example.test"
    assert a.authenticate("bob.smith@example.test", "pw-new") is not None
    assert a.store.get_user("carol@example.test") is None
    assert ok(cli.userutil("list", "example.test")).split("\n")[0].startswith("admin@")


def test_add_refusals(cli, accounts):
    results = cli.start_many(
        "userutil",
        ("add", "x@nowhere.test", "--password", "pw"),
        ("add", "admin@example.test", "--password", "other"),
        ("add", "a b@example.test", "--password", "pw"),
        ("add", "x@y@example.test", "--password", "pw"),
        ("add", "x@example.test", "--password", ""),
        ("add", "x@example.test", "--password", "pw", "--quota", "lots"),
        ("add", "x@example.test"),
    )
    unknown, dup, space, two_at, empty, quota, missing = results
    refused(unknown, "nowhere.test is not a local domain")
    refused(dup, "admin@example.test already exists")
    assert "malformed address" in refused(space, "space")
    refused(two_at, "more than one @")
    refused(empty, "the password is empty")
    refused(quota, "bad quota")
    refused(missing, "--password", code=2)                 # usage error
    assert [u.address for u in accounts().store.list_users()] == ["admin@example.test"]


def test_unknown_user_and_domain(cli):
    passwd, delete, listing = cli.start_many(
        "userutil", ("passwd", "ghost@example.test", "--password", "pw"),
        ("del", "ghost@example.test"), ("list", "nowhere.test"))
    refused(passwd, "no such user: ghost@example.test")
    refused(delete, "no such user: ghost@example.test")
    refused(listing, "nowhere.test is not a local domain")


def test_admin_grant_and_revoke(cli, accounts):
    assert "is no longer" in ok(cli.userutil("admin", "admin@example.test", "--revoke"))
    assert accounts().store.get_user("admin@example.test").admin is False
    grant, neither = cli.start_many("userutil", ("admin", "admin@example.test", "--grant"),
                                    ("admin", "admin@example.test"))
    assert "is now an administrator" in ok(grant)
    refused(neither, "--grant or --revoke", code=2)
    assert accounts().store.get_user("admin@example.test").admin is True


# ---------------------------------------------------------------- domains
def test_domains(cli, accounts):
    other, idn = cli.start_many("userutil", ("domain", "add", "Other.TEST"),
                                ("domain", "add", "B\u00fccher.test"))
    assert "added domain other.test" in ok(other)
    assert "added domain xn--bcher-kva.test" in ok(idn)
    listing, dup, bad, busy = cli.start_many(
        "userutil", ("domain", "list"), ("domain", "add", "other.test"),
        ("domain", "add", "bad..test"), ("domain", "del", "example.test"))
    assert ok(listing).split() == ["example.test", "other.test", "xn--bcher-kva.test"]
    refused(dup, "already exists")
    refused(bad, "malformed domain")
    refused(busy, "still has 1 user")
    ok(cli.userutil("domain", "del", "other.test"))
    assert [d.name for d in accounts().store.list_domains()] == [
        "example.test", "xn--bcher-kva.test"]


# ---------------------------------------------------------------- aliases
def test_aliases(cli, accounts):
    local, remote = cli.start_many(
        "userutil", ("alias", "add", "Sales@example.test", "ADMIN@example.test"),
        ("alias", "add", "sales@example.test", "partner@remote.test"))
    assert "added alias sales@example.test -> admin@example.test" in ok(local)
    ok(remote)
    listing, self_, user, missing, unknown, as_user = cli.start_many(
        "userutil",
        ("alias", "list"),
        ("alias", "add", "loop@example.test", "LOOP@example.test"),
        ("alias", "add", "admin@example.test", "partner@remote.test"),
        ("alias", "add", "info@example.test", "nobody@example.test"),
        ("alias", "del", "never@example.test"),
        ("add", "sales@example.test", "--password", "pw"))
    assert [ln for ln in ok(listing).splitlines() if ln.startswith("sales@")] == [
        "sales@example.test\tadmin@example.test", "sales@example.test\tpartner@remote.test"]
    refused(self_, "cannot point at itself")
    refused(user, "is a user")
    refused(missing, "does not exist")
    refused(unknown, "no such alias")
    refused(as_user, "already an alias")                  # an alias cannot become a user
    assert accounts().store.alias_targets("sales@example.test") == [
        "admin@example.test", "partner@remote.test"]
    assert accounts().store.alias_targets("loop@example.test") == []

    ok(cli.userutil("alias", "del", "sales@example.test", "partner@remote.test"))
    assert accounts().store.alias_targets("sales@example.test") == ["admin@example.test"]
    assert "deleted 1 alias entry" in ok(cli.userutil("alias", "del", "sales@example.test"))
    assert {a.address for a in accounts().store.list_aliases()} == {
        "postmaster@example.test", "abuse@example.test"}


# ---------------------------------------------------------------- forwards
def test_forward_on_keep_and_off(cli, accounts):
    out = ok(cli.userutil("forward", "admin@example.test", "--to", "boss@remote.test"))
    assert "(no local copy)" in out
    a = accounts()
    admin = a.store.get_user("admin@example.test")
    fwd = a.store.get_forward(admin.id)
    assert (fwd.target, fwd.keep) == ("boss@remote.test", False)

    ok(cli.userutil("forward", "admin@example.test", "--to", "boss2@remote.test", "--keep"))
    show, both, neither, self_ = cli.start_many(
        "userutil",
        ("show", "admin@example.test"),
        ("forward", "admin@example.test", "--to", "x@remote.test", "--off"),
        ("forward", "admin@example.test"),
        ("forward", "admin@example.test", "--to", "ADMIN@example.test"))
    assert "forward: boss2@remote.test (keeping a copy)" in ok(show)
    refused(both, "--to TARGET [--keep] or --off", code=2)
    refused(neither, "--to TARGET [--keep] or --off", code=2)
    refused(self_, "own address")
    fwd = accounts().store.get_forward(admin.id)
    assert (fwd.target, fwd.keep) == ("boss2@remote.test", True)   # refusals changed nothing

    assert "forwarding turned off" in ok(cli.userutil("forward", "admin@example.test", "--off"))
    assert accounts().store.get_forward(admin.id) is None
    assert "was not on" in ok(cli.userutil("forward", "admin@example.test", "--off"))


# ---------------------------------------------------------------- finding the home
def test_home_before_after_env_and_default(cli, tmp_path):
    before = cli.userutil("--home", str(cli.home), "domain", "list", home=False)
    after = cli.userutil("domain", "list", "--home", str(cli.home), home=False)
    env = cli.userutil("domain", "list", home=False, env=clean_env(COREMAIL_HOME=str(cli.home)))
    # --home beats $COREMAIL_HOME
    both = cli.userutil("domain", "list", env=clean_env(COREMAIL_HOME=str(tmp_path / "nope")))
    (tmp_path / "cwd").mkdir()
    (cli.home).rename(tmp_path / "cwd" / "var")
    default = cli.userutil("domain", "list", home=False, cwd=tmp_path / "cwd")
    for r in (before, after, env, both, default):
        assert ok(r).split() == [DOMAIN]


def test_missing_home_is_a_clear_error(cli, tmp_path):
    r = cli.userutil("--home", str(tmp_path / "nowhere"), "list", home=False)
    refused(r, "coremail init", code=2)


def test_admin_authenticates_after_init(cli, accounts):
    a = accounts()
    assert a.authenticate("admin", ADMIN_PASSWORD).address == "admin@example.test"
    assert a.authenticate("admin@example.test", ADMIN_PASSWORD).admin is True
    assert a.authenticate("ADMIN", ADMIN_PASSWORD) is not None
    assert a.authenticate("admin", "wrong") is None


def test_postmaster_and_abuse_exist_for_every_domain(tmp_path):
    from tests.support.home import make_home
    home = make_home(tmp_path / "h")
    assert home.userutil("domain", "add", "second.test").returncode == 0
    out = home.userutil("alias", "list").stdout
    for dom in ("example.test", "second.test"):
        for role in ("postmaster", "abuse"):
            assert f"{role}@{dom}\tadmin@example.test" in out
