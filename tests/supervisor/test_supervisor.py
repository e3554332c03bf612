"""The supervisor through the real `coremail` command: start, status, stop,
restart, crash recovery after kill -9, bad config and port conflicts, and a
shutdown that leaves no process behind."""
from __future__ import annotations

import os
import signal
import smtplib
import socket
import time

import pytest

from tests.support.home import make_home


def _status(home) -> dict[str, list[str]]:
    out = home.coremail("status", check=True).stdout
    return {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}


def _children(pid: int) -> set[int]:
    kids = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.add(int(p))
            except (OSError, IndexError):
                pass
    return kids


def _tree(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(_children(p) - out)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _smtp_ok(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
            return s.noop()[0] == 250
    except OSError:
        return False


@pytest.fixture
def home(tmp_path):
    h = make_home(tmp_path / "home")
    yield h
    h.coremail("shutdown", timeout=60)


def test_start_status_stop_restart_shutdown(home):
    r = home.coremail("start")
    assert r.returncode == 0, r.stderr
    assert "smtp: started" in r.stdout
    assert _smtp_ok(home.ports["smtp"])
    st = _status(home)
    assert st["smtp"][1] == "running"
    sup_pid = int(st["supervisor"][2])
    smtp_pid = int(st["smtp"][2])
    assert f"smtp=127.0.0.1:{home.ports['smtp']}" in st["smtp"][3]
    assert (home.path / "run" / "smtp.pid").read_text().strip() == str(smtp_pid)
    # two worker processes share the port
    assert len(_children(smtp_pid)) == 2

    # start again: already running, still 0
    assert home.coremail("start").returncode == 0

    r = home.coremail("stop", "smtp")
    assert r.returncode == 0, r.stderr
    assert _status(home)["smtp"][1] == "stopped"
    assert not _smtp_ok(home.ports["smtp"])

    r = home.coremail("restart", "smtp")
    assert r.returncode == 0, r.stderr
    assert _smtp_ok(home.ports["smtp"])

    tree = _tree(sup_pid)
    r = home.coremail("shutdown")
    assert r.returncode == 0, r.stderr
    time.sleep(0.3)
    assert not any(_alive(p) for p in tree), "shutdown left processes behind"
    assert not (home.path / "run" / "supervisor.sock").exists()
    r = home.coremail("status")
    assert r.returncode != 0 and "not running" in r.stderr


def test_kill9_service_is_restarted(home):
    assert home.coremail("start").returncode == 0
    old = int(_status(home)["smtp"][2])
    workers = _children(old)
    os.kill(old, signal.SIGKILL)
    deadline = time.time() + 20
    new = None
    while time.time() < deadline:
        st = _status(home)["smtp"]
        if st[1] == "running" and st[2] != "-" and int(st[2]) != old:
            new = int(st[2])
            break
        time.sleep(0.2)
    assert new, "the supervisor did not restart smtp"
    assert _smtp_ok(home.ports["smtp"])
    time.sleep(0.5)
    assert not any(_alive(p) for p in workers), "workers of the killed service survived"
    assert "service.exited" in home.log("supervisor", until="service.exited")


def test_kill9_worker_is_reforked(home):
    assert home.coremail("start").returncode == 0
    mgr = int(_status(home)["smtp"][2])
    victim = sorted(_children(mgr))[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        kids = _children(mgr)
        if len(kids) == 2 and victim not in kids:
            break
        time.sleep(0.1)
    assert len(_children(mgr)) == 2 and victim not in _children(mgr)
    assert all(_smtp_ok(home.ports["smtp"]) for _ in range(6))


def test_port_in_use_is_named(home):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", home.ports["smtp"]))
    blocker.listen()
    try:
        r = home.coremail("start")
        assert r.returncode != 0
        assert "smtp" in r.stderr and str(home.ports["smtp"]) in r.stderr
        assert "in use" in r.stderr
    finally:
        blocker.close()


def test_bad_config_stops_start_naming_the_key(home):
    cfg = home.path / "conf" / "coremail.toml"
    cfg.write_text(cfg.read_text().replace("max_recipients = 100", "max_recipients = -3"))
    r = home.coremail("start")
    assert r.returncode == 2
    assert "limits.max_recipients" in r.stderr
    r = home.coremail("start", env={"COREMAIL_LISTEN__SMTP": "notaport"})
    assert r.returncode == 2 and "listen.smtp" in r.stderr


def test_unknown_service_lists_valid_names(home):
    r = home.coremail("restart", "smtpx")
    assert r.returncode != 0
    assert "smtp" in r.stderr and "valid" in r.stderr


def test_config_change_is_live(home):
    assert home.coremail("start").returncode == 0
    assert home.coremail("config", "set", "limits.max_message_size", "1K").returncode == 0
    deadline = time.time() + 5
    seen = False
    while time.time() < deadline and not seen:
        with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=5) as s:
            s.ehlo("client.test")
            seen = s.esmtp_features.get("size") == "1024"
        time.sleep(0.3)
    assert seen, "the SIZE limit did not change within 5 s"


def test_stop_says_goodbye_to_open_sessions_and_keeps_accepted_mail(home):
    assert home.coremail("start").returncode == 0
    assert home.userutil("add", "kim@example.test", "--password", "pw-123456").returncode == 0
    with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=10) as s:
        s.sendmail("a@remote.test", ["kim@example.test"], b"Subject: before stop\r\n\r\nx\r\n")
    idle = socket.create_connection(("127.0.0.1", home.ports["smtp"]), timeout=30)
    f = idle.makefile("rb")
    assert f.readline().startswith(b"220")
    idle.sendall(b"EHLO client.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    assert home.coremail("stop", "smtp").returncode == 0
    assert f.readline().startswith(b"421 4.3.2"), "an idle session gets a 421 goodbye"
    idle.close()
    r = home.coremail("start", "smtp")
    assert r.returncode == 0, r.stderr
    import poplib
    p = poplib.POP3("127.0.0.1", home.ports["pop3"], timeout=10)
    p.user("kim@example.test")
    p.pass_("pw-123456")
    assert b"Subject: before stop" in b"\r\n".join(p.retr(1)[1])
    p.quit()
