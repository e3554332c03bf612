"""clamd behind SMTP (issue 17): a real private clamd, real SMTP sessions.
A virus is refused naming it and nothing is delivered; clean mail is marked
Clean; clamd stopped or silent follows antivirus.on_error within the time-out."""
from __future__ import annotations

import time

import pytest

from tests.support.clamd import EICAR, SIGNATURE, Silent
from .conftest import RCPT, eicar_in_zip_in_zip, mail, send, zipped


@pytest.fixture
def av(srv, clamd):
    srv.set(antivirus={"clamd": clamd.address, "timeout": "5s"})
    return srv


@pytest.mark.parametrize("attachment", [
    ("eicar.txt", EICAR),
    ("files.zip", zipped(("eicar.txt", EICAR))),
    ("nested.zip", eicar_in_zip_in_zip()),
], ids=["attached", "in-zip", "in-zip-in-zip"])
def test_a_virus_is_refused_naming_it_and_nothing_is_delivered(av, attachment):
    before = len(av.inbox(RCPT))
    code, text = send(av, mail(attachment))
    assert code == 554, text
    assert text.startswith("5.7.1") and f"virus found: {SIGNATURE}" in text
    assert len(av.inbox(RCPT)) == before
    line = [ln for ln in av.log_lines("smtp.message") if ln.get("result") == "554/5.7.1"][-1]
    assert line["qid"] and SIGNATURE in line["reason"] and "VIRUS_FOUND" in line["checks"]
    assert line["virus"].startswith(f"Infected ({SIGNATURE}")


def test_clean_mail_is_delivered_marked_clean_over_tcp_too(av, clamd):
    for address in (clamd.address, clamd.tcp):
        av.set(antivirus={"clamd": address})
        code, text = send(av, mail(("report.zip", zipped(("report.txt", b"numbers " * 500)))))
        assert code == 250, text
        assert b"X-Virus-Status: Clean\r\n" in av.inbox(RCPT)[-1]
        assert av.log_lines("smtp.message")[-1]["virus"] == "Clean"


@pytest.mark.parametrize("policy", ["tempfail", "accept", "reject"])
def test_clamd_down_follows_on_error(srv, tmp_path, policy):
    srv.set(antivirus={"clamd": f"unix:{tmp_path}/none.sock", "on_error": policy})
    _check_policy(srv, policy, "not running")


@pytest.mark.parametrize("policy", ["tempfail", "accept", "reject"])
def test_refused_tcp_connection_follows_on_error(srv, policy):
    from tests.support.clamd import free_port
    srv.set(antivirus={"clamd": f"127.0.0.1:{free_port()}", "on_error": policy})
    _check_policy(srv, policy, "refused the connection")


@pytest.mark.parametrize("policy", ["tempfail", "accept", "reject"])
def test_a_silent_clamd_times_out_and_follows_on_error(srv, tmp_path, policy):
    silent = Silent(tmp_path / "silent.sock")
    try:
        srv.set(antivirus={"clamd": silent.address, "on_error": policy, "timeout": "1s"})
        t0 = time.monotonic()
        _check_policy(srv, policy, "did not answer within 1 s")
        assert time.monotonic() - t0 < 4      # the session ends in time
        assert silent.accepted >= 1
    finally:
        silent.close()


def _check_policy(srv, policy: str, words: str) -> None:
    before = len(srv.inbox(RCPT))
    code, text = send(srv, mail(("a.txt", b"hello")))
    if policy == "tempfail":
        assert code == 451 and text.startswith("4.7.0"), text
        assert "virus scanner is not available" in text and words in text
    elif policy == "reject":
        assert code == 554 and text.startswith("5.7.0") and words in text, text
    else:
        assert code == 250, text
        got = srv.inbox(RCPT)[-1]
        assert b"X-Virus-Status: Unchecked (" in got and words.encode() in got
    assert len(srv.inbox(RCPT)) == before + (policy == "accept")


def test_a_message_over_clamds_stream_limit_is_delivered_unchecked(av):
    # the private clamd's StreamMaxLength is 1M: clamd refuses, the message says why
    big = mail(("big.txt", b"0123456789abcdef" * 70000))
    code, text = send(av, big)
    assert code == 250, text
    assert b"X-Virus-Status: Unchecked (larger than clamd's StreamMaxLength)" in av.inbox(RCPT)[-1]
    av.set(antivirus={"clamd": av.ctx.settings.antivirus.clamd, "stream_max": "500K"})
    code, text = send(av, big)
    assert code == 250 and b"Unchecked (larger than clamd's limit of 500K)" in av.inbox(RCPT)[-1]
