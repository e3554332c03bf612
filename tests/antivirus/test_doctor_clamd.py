"""`coremail doctor`'s clamd line against a real clamd (the session's
private one, over its Unix socket and TCP), a clamd that is absent, one
that accepts but never answers, and none configured."""
from __future__ import annotations

import time

from coremail.config import Settings
from coremail.services.doctor import Doctor
from tests.support.clamd import Silent


def _doctor(tmp_path, where: str) -> Doctor:
    settings = Settings(antivirus={"clamd": where}) if where else Settings()
    return Doctor(tmp_path, settings, store=None)


def test_a_running_clamd_answers(clamd, tmp_path):
    for where in (clamd.address, clamd.tcp):
        f = _doctor(tmp_path, where).clamd()
        assert (f.status, f.check, f.words) == ("ok", "clamd", f"clamd at {where} answers")


def test_an_absent_clamd_fails_and_says_what_to_do(tmp_path):
    where = f"unix:{tmp_path / 'no-clamd.sock'}"
    f = _doctor(tmp_path, where).clamd()
    assert f.status == "fail" and f.words.startswith(f"clamd at {where} does not answer:")
    assert "start clamd (systemctl start clamav-daemon) or correct antivirus.clamd" in f.line()
    from tests.support.peers import free_port
    f = _doctor(tmp_path, f"127.0.0.1:{free_port()}").clamd()
    assert f.status == "fail" and "does not answer" in f.words


def test_a_clamd_that_never_answers_fails_within_seconds(tmp_path):
    silent = Silent(tmp_path / "silent.sock")
    try:
        t = time.monotonic()
        f = _doctor(tmp_path, silent.address).clamd()
        assert f.status == "fail" and "does not answer" in f.words
        assert time.monotonic() - t < 8
    finally:
        silent.close()


def test_no_clamd_configured_no_line(tmp_path):
    assert _doctor(tmp_path, "").clamd() is None
