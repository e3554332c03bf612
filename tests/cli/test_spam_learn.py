"""`coremail spam learn` through the installed command: a Maildir, an mbox
and plain files; the global model or a user's; never twice in one class;
relearning moves a message; clear errors for bad input."""
from __future__ import annotations

import mailbox

from coremail.config import load_settings
from coremail.store import open_store
from coremail.store.interfaces import GLOBAL_MODEL
from tests.support.mailgen import corpus

from .conftest import DOMAIN


def _totals(cli, owner=GLOBAL_MODEL):
    store = open_store(cli.home, load_settings(cli.home))
    try:
        return store.bayes_totals([owner]).get(owner, (0, 0))
    finally:
        store.close()


def test_learn_maildir_mbox_and_files(cli, tmp_path):
    md = mailbox.Maildir(str(tmp_path / "Spam"), create=True)
    for raw in corpus("spam", 12):
        md.add(raw)
    box = mailbox.mbox(str(tmp_path / "ham.mbox"), create=True)
    for raw in corpus("ham", 9):
        box.add(raw)
    box.flush()
    files = tmp_path / "more"
    files.mkdir()
    for i, raw in enumerate(corpus("ham", 3, start=100)):
        (files / f"{i}.eml").write_bytes(raw)
    (files / "notes.txt").write_text("just some text\n")

    r = cli.coremail("spam", "learn", "--spam", str(tmp_path / "Spam"))
    assert r.returncode == 0, r.stderr
    assert "learnt 12 message(s) as spam into the global model" in r.stdout
    assert "no score until it has learnt 30 spam and 30 ham" in r.stdout
    r = cli.coremail("spam", "learn", "--ham", str(tmp_path / "ham.mbox"), str(files))
    assert r.returncode == 0, r.stderr
    assert "learnt 12 message(s) as ham" in r.stdout and "notes.txt: not a mail message" in r.stdout
    assert _totals(cli) == (12, 12)

    again = cli.coremail("spam", "learn", "--spam", str(tmp_path / "Spam"))
    assert "learnt 0 message(s)" in again.stdout and "12 already learnt as spam" in again.stdout
    one = next(iter(md.iterkeys()))
    moved = cli.coremail("spam", "learn", "--ham", str(tmp_path / "Spam" / "new" / one))
    assert "1 of them moved from spam" in moved.stdout
    assert _totals(cli) == (11, 13)


def test_learn_for_a_user_and_errors(cli, tmp_path):
    cli.userutil("add", f"amy@{DOMAIN}", "--password", "pw-amy-123")
    f = tmp_path / "m.eml"
    f.write_bytes(corpus("spam", 1)[0])
    r = cli.coremail("spam", "learn", "--spam", "--user", f"amy@{DOMAIN}", str(f))
    assert r.returncode == 0 and f"into the model of amy@{DOMAIN}" in r.stdout
    assert _totals(cli) == (0, 0)
    r = cli.coremail("spam", "learn", "--spam", "--user", f"nobody@{DOMAIN}", str(f))
    assert r.returncode == 2 and "no such user" in r.stderr and "Traceback" not in r.stderr
    r = cli.coremail("spam", "learn", str(f))
    assert r.returncode == 2 and "--spam or --ham" in r.stderr
    r = cli.coremail("spam", "learn", "--ham", str(tmp_path / "missing"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_filter_test_explains_the_score(cli, tmp_path):
    probe = tmp_path / "probe.eml"
    probe.write_bytes(corpus("spam", 1, start=500, to=f"admin@{DOMAIN}")[0])
    r = cli.coremail("filter", "test", str(probe))
    assert r.returncode == 0, r.stderr
    assert "check bayes: nothing found (not enough training for a score: 0 spam" in r.stdout
    for kind, n in (("spam", 35), ("ham", 35)):
        box = mailbox.mbox(str(tmp_path / f"{kind}.mbox"), create=True)
        for raw in corpus(kind, n):
            box.add(raw)
        box.flush()
        assert cli.coremail("spam", "learn", f"--{kind}", str(tmp_path / f"{kind}.mbox")).returncode == 0
    r = cli.coremail("filter", "test", str(probe))
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "BAYES_" in ln and "probability" in ln)
    assert "BAYES_999 +6" in line and "by global: 35 spam, 35 ham" in line
    assert "towards spam: " in line and "towards ham: " in line
    status = next(ln for ln in r.stdout.splitlines() if ln.startswith("adds X-Spam-Status:"))
    assert f"admin@{DOMAIN} -> Junk" in r.stdout and "BAYES_999" in status.partition("tests=")[2]
