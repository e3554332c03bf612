"""A real third-party client (swaks, Debian package `swaks`): plain MX
delivery, STARTTLS + AUTH on submission, implicit TLS on 465, and a wrong
password; then a graceful stop with one idle and one busy session."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest

from .conftest import DOMAIN, PASSWORD, Server

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None,
                                reason="swaks is not installed (apt-get install swaks)")


@pytest.fixture(scope="module", autouse=True)
def users(server):
    server.add_user("sam")


def swaks(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--helo", "swaks.test",
                           "--timeout", "20", *args],
                          capture_output=True, text=True, timeout=60)


def test_swaks_mx_delivery(srv):
    r = swaks(srv, "--port", str(srv.ports["smtp"]), "--from", "s@remote.test",
              "--to", f"sam@{DOMAIN}", "--header", "Subject: via swaks")
    assert r.returncode == 0, r.stdout
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert any(b"Subject: via swaks" in m for m in srv.inbox(f"sam@{DOMAIN}"))


@pytest.mark.parametrize("mode", [["-tls"], ["-tlsc"]])
@pytest.mark.parametrize("auth", ["PLAIN", "LOGIN"])
def test_swaks_tls_and_auth(srv, mode, auth):
    port = srv.ports["submission" if mode == ["-tls"] else "smtps"]
    r = swaks(srv, "--port", str(port), *mode, "--auth", auth, "--auth-user", f"sam@{DOMAIN}",
              "--auth-password", PASSWORD, "--from", f"sam@{DOMAIN}", "--to", "far@away.test")
    assert r.returncode == 0, r.stdout
    assert "235 2.7.0" in r.stdout and "250 2.0.0 Ok: queued as" in r.stdout
    qid = r.stdout.split("queued as ")[1].split()[0]
    assert srv.store.queue_get(qid).recipients[0].address == "far@away.test"


def test_swaks_wrong_password(srv):
    srv.service.handler.throttle.clear()
    r = swaks(srv, "--port", str(srv.ports["submission"]), "-tls", "--auth", "PLAIN",
              "--auth-user", f"sam@{DOMAIN}", "--auth-password", "nope",
              "--from", f"sam@{DOMAIN}", "--to", "far@away.test")
    assert r.returncode != 0 and "535 5.7.8" in r.stdout
    srv.service.handler.throttle.clear()


def test_graceful_stop(tmp_path):
    srv = Server(tmp_path)
    srv.add_user("sam")
    idle = srv.raw()
    busy = srv.raw()
    busy.cmd("EHLO x.test")
    busy.cmd("MAIL FROM:<a@remote.test>")
    busy.cmd(f"RCPT TO:<sam@{DOMAIN}>")
    assert busy.cmd("DATA").startswith("354")
    busy.send(b"Subject: in flight\r\n\r\n")
    stopper = threading.Thread(target=srv.stop, kwargs={"timeout": 10})
    stopper.start()
    assert idle.reply().startswith("421 4.3.2")
    time.sleep(0.3)
    busy.send(b"the rest\r\n.\r\n")
    assert busy.reply().startswith("250 2.0.0")          # in-flight DATA finishes
    assert busy.reply().startswith("421 4.3.2")          # then goodbye
    stopper.join(15)
