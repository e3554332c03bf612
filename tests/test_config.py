"""Configuration: defaults, sizes and durations, TOML then environment, errors
that name the key, live reload (ConfigWatcher) and `config set` (services.settings)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from coremail.config import (
    CONFIG_RELATIVE,
    ConfigError,
    ConfigWatcher,
    Settings,
    build_settings,
    load_settings,
    parse_duration,
    parse_size,
    read_toml,
)
from coremail.services import settings as settings_service
from coremail.services.home import PRIVILEGED, TEMPLATE
from coremail.services.settings import get_value, set_value


@pytest.fixture(autouse=True)
def _no_coremail_env(monkeypatch):
    for k in list(os.environ):
        if k.upper().startswith("COREMAIL_"):
            monkeypatch.delenv(k)


def write_home(home: Path, text: str | None = None) -> Path:
    path = home / CONFIG_RELATIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else TEMPLATE.format(
        hostname="mail.example.test", domain="example.test", database="", blobs="",
        **PRIVILEGED))
    return path


# ---------------------------------------------------------------- defaults
def test_defaults_are_the_interface_values():
    s = build_settings({}, env={})
    assert s.server.hostname == "mail.example.test"
    assert (s.listen.address, s.listen.smtp, s.listen.submission, s.listen.smtps) == (
        "0.0.0.0", 25, 587, 465)
    assert (s.listen.pop3, s.listen.pop3s, s.listen.imap, s.listen.imaps, s.listen.http) == (
        110, 995, 143, 993, 80)
    assert s.delivery.relayhost == "" and s.delivery.nameservers == []
    assert s.delivery.smtp_port == 25
    assert [str(d) for d in s.delivery.retry_intervals] == ["5m", "10m", "30m", "1h", "2h", "4h"]
    assert [float(d) for d in s.delivery.retry_intervals] == [300, 600, 1800, 3600, 7200, 14400]
    assert float(s.delivery.max_queue_time) == 5 * 86400
    assert s.limits.max_message_size == 50 * 1024 ** 2
    assert str(s.limits.max_message_size) == "50M"
    assert s.limits.max_recipients == 100
    assert s.limits.default_quota == 1024 ** 3
    assert s.policy.allow_sender_mismatch is False


def test_settings_are_frozen():
    s = build_settings({}, env={})
    with pytest.raises(Exception):
        s.listen.smtp = 2525  # type: ignore[misc]


def test_the_init_template_is_valid_and_matches_the_interface():
    data = tomllib.loads(TEMPLATE.format(hostname="mx.example.test", domain="example.test",
                                         database="postgresql+psycopg://u@db/cm",
                                         blobs="/srv/blobs", **PRIVILEGED))
    s = build_settings(data, env={})
    assert s.server.hostname == "mx.example.test"
    assert s.storage.database == "postgresql+psycopg://u@db/cm"
    assert s.storage.blobs == "/srv/blobs"
    assert s.listen.smtp == 25 and s.listen.http == 80
    assert str(s.limits.default_quota) == "1G"


# ---------------------------------------------------------------- sizes and durations
@pytest.mark.parametrize("text, n", [
    (0, 0), (1024, 1024), ("1024", 1024), ("512K", 512 * 1024), ("50M", 50 * 1024 ** 2),
    ("1G", 1024 ** 3), ("2T", 2 * 1024 ** 4), ("10m", 10 * 1024 ** 2), ("3 G", 3 * 1024 ** 3),
    ("2MiB", 2 * 1024 ** 2), ("4kB", 4096), (" 7M ", 7 * 1024 ** 2),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "abc", "-1", -1, "1.5M", "5X", "M", True, "1 0M"])
def test_parse_size_refuses(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("text, secs", [
    (30, 30.0), (1.5, 1.5), ("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
    ("5d", 432000.0), ("1w", 604800.0), ("100ms", 0.1), ("1.5h", 5400.0), ("5M", 300.0),
])
def test_parse_duration(text, secs):
    assert parse_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("bad", ["", "soon", "-5m", -1, "5y", "m", False])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_sizes_and_durations_keep_their_text():
    s = build_settings({"limits": {"max_message_size": "10M", "default_quota": 2048},
                        "delivery": {"max_queue_time": "3d", "retry_intervals": ["1m", 90]}},
                       env={})
    assert int(s.limits.max_message_size) == 10 * 1024 ** 2
    assert str(s.limits.max_message_size) == "10M"
    assert str(s.limits.default_quota) == "2048"
    assert float(s.delivery.max_queue_time) == 3 * 86400
    assert [float(d) for d in s.delivery.retry_intervals] == [60.0, 90.0]
    assert get_value(s, "limits.max_message_size") == "10M"


# ---------------------------------------------------------------- TOML and environment
def test_toml_then_environment(tmp_path, monkeypatch):
    write_home(tmp_path, '[listen]\nsmtp = 25\nimap = 1143\n[limits]\nmax_recipients = 7\n')
    s = load_settings(tmp_path)
    assert (s.listen.smtp, s.listen.imap, s.limits.max_recipients) == (25, 1143, 7)
    monkeypatch.setenv("COREMAIL_LISTEN__SMTP", "2525")
    s = load_settings(tmp_path)
    assert s.listen.smtp == 2525            # the environment wins ...
    assert s.listen.imap == 1143            # ... over that key only
    assert s.limits.max_recipients == 7
    assert s.listen.pop3 == 110             # untouched keys keep their defaults


def test_environment_fills_a_section_missing_from_the_file(tmp_path, monkeypatch):
    write_home(tmp_path, '[server]\nhostname = "mx.example.test"\n')
    monkeypatch.setenv("COREMAIL_LIMITS__MAX_MESSAGE_SIZE", "5M")
    monkeypatch.setenv("COREMAIL_POLICY__ALLOW_SENDER_MISMATCH", "true")
    s = load_settings(tmp_path)
    assert s.limits.max_message_size == 5 * 1024 ** 2
    assert s.policy.allow_sender_mismatch is True
    assert s.server.hostname == "mx.example.test"


def test_explicit_env_argument_replaces_the_process_environment(monkeypatch):
    monkeypatch.setenv("COREMAIL_LISTEN__SMTP", "1")
    s = build_settings({"listen": {"smtp": 25}}, env={"COREMAIL_LISTEN__SMTP": "2525"})
    assert s.listen.smtp == 2525
    assert build_settings({"listen": {"smtp": 25}}, env={}).listen.smtp == 25
    assert os.environ["COREMAIL_LISTEN__SMTP"] == "1"   # restored afterwards


def test_coremail_home_in_the_environment_is_not_a_setting():
    # The CLI reads COREMAIL_HOME; the settings must not choke on it.
    s = build_settings({}, env={"COREMAIL_HOME": "/srv/mail"})
    assert s.listen.smtp == 25


# ---------------------------------------------------------------- errors name the key
@pytest.mark.parametrize("data, key, words", [
    ({"limits": {"max_message_size": "lots"}}, "limits.max_message_size", "not a size"),
    ({"limits": {"max_message_size": True}}, "limits.max_message_size", "size"),
    ({"limits": {"default_quota": "-1G"}}, "limits.default_quota", "not a size"),
    ({"limits": {"max_recipients": 0}}, "limits.max_recipients", "greater than or equal to 1"),
    ({"listen": {"smtp": 70000}}, "listen.smtp", "less than or equal to 65535"),
    ({"listen": {"imap": "x"}}, "listen.imap", "integer"),
    ({"delivery": {"max_queue_time": "forever"}}, "delivery.max_queue_time", "not a duration"),
    ({"delivery": {"retry_intervals": []}}, "delivery.retry_intervals", "at least 1"),
    ({"policy": {"allow_sender_mismatch": "maybe"}}, "policy.allow_sender_mismatch", "boolean"),
    ({"log": {"level": "loud"}}, "log.level", "must be one of"),
    ({"antispam": {"dnsbl": ["zen.spamhaus.org", "not a zone!"]}}, "antispam.dnsbl",
     "'not a zone!' is not a DNS zone name"),
    ({"antispam": {"dnsbl": ["nodot"]}}, "antispam.dnsbl", "not a DNS zone name"),
    ({"antispam": {"junk_score": 6, "reject_score": 3}}, "antispam.reject_score",
     "below junk_score (6)"),
])
def test_bad_values_name_the_key(data, key, words):
    with pytest.raises(ConfigError) as e:
        build_settings(data, env={})
    assert key in str(e.value)
    assert words in str(e.value)


def test_dnsbl_zones_are_normalised_and_a_zero_score_is_off():
    a = build_settings({"antispam": {"dnsbl": [" ZEN.Spamhaus.org. ", "zen.spamhaus.org",
                                               "bl.test"], "reject_score": 0}}, env={}).antispam
    assert a.dnsbl == ["zen.spamhaus.org", "bl.test"] and a.reject_score == 0


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        build_settings({"listen": {"smtp": -1}, "limits": {"max_message_size": "x"}}, env={})
    assert "listen.smtp" in str(e.value) and "limits.max_message_size" in str(e.value)


@pytest.mark.parametrize("data, key", [
    ({"limits": {"max_mesage_size": "1M"}}, "limits.max_mesage_size"),
    ({"lmits": {"max_message_size": "1M"}}, "lmits"),
])
def test_unknown_keys_are_named(data, key):
    with pytest.raises(ConfigError) as e:
        build_settings(data, env={})
    assert key in str(e.value) and "unknown key" in str(e.value)


def test_bad_environment_value_names_the_key_and_the_variable():
    with pytest.raises(ConfigError) as e:
        build_settings({}, env={"COREMAIL_LISTEN__SMTP": "twenty-five"})
    assert "listen.smtp" in str(e.value)
    assert "COREMAIL_LISTEN__SMTP" in str(e.value)


def test_unknown_environment_key_is_named():
    with pytest.raises(ConfigError) as e:
        build_settings({}, env={"COREMAIL_LIMITS__MAX_MESAGE_SIZE": "1M"})
    assert "limits.max_mesage_size" in str(e.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="coremail init"):
        load_settings(tmp_path)
    path = write_home(tmp_path, "[listen\nsmtp = 25\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(path)


# ---------------------------------------------------------------- live reload
def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_watcher_picks_up_a_change_and_keeps_old_settings_on_a_broken_file(tmp_path):
    path = write_home(tmp_path, "[listen]\nsmtp = 2525\n")
    w = ConfigWatcher(tmp_path)
    assert w.current.listen.smtp == 2525
    assert w.poll() is False                       # nothing changed

    _replace(path, "[listen]\nsmtp = 2626\n[limits]\nmax_message_size = \"1M\"\n")
    assert w.poll() is True
    assert w.current.listen.smtp == 2626
    assert w.current.limits.max_message_size == 1024 ** 2
    assert w.poll() is False                       # reported once

    good = w.current
    _replace(path, "[listen]\nsmtp = \"many\"\n")
    assert w.poll() is False
    assert w.current is good                       # the last good settings stay
    assert "listen.smtp" in (w.last_error or "")

    _replace(path, "[listen\n")
    assert w.poll() is False and w.current is good
    assert "TOML" in (w.last_error or "")

    _replace(path, "[listen]\nsmtp = 2727\n")
    assert w.poll() is True
    assert w.current.listen.smtp == 2727 and w.last_error is None


def test_watcher_sees_an_atomic_replace_with_the_same_size_and_mtime(tmp_path):
    # Two `config set` in the same clock tick write files of the same length:
    # size and mtime alone cannot tell them apart.
    path = write_home(tmp_path, "[listen]\nsmtp = 2525\n")
    st = path.stat()
    w = ConfigWatcher(tmp_path)
    _replace(path, "[listen]\nsmtp = 2626\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert w.poll() is True
    assert w.current.listen.smtp == 2626


def test_watcher_survives_the_file_disappearing(tmp_path):
    path = write_home(tmp_path, "[listen]\nsmtp = 2525\n")
    w = ConfigWatcher(tmp_path)
    path.unlink()
    assert w.poll() is False
    assert w.current.listen.smtp == 2525 and w.last_error
    write_home(tmp_path, "[listen]\nsmtp = 2526\n")
    assert w.poll() is True and w.current.listen.smtp == 2526


# ---------------------------------------------------------------- config get / set
def test_get_value_formats():
    s = build_settings({"delivery": {"nameservers": ["127.0.0.1:5353"]}}, env={})
    assert get_value(s, "limits.max_message_size") == "50M"
    assert get_value(s, "listen.smtp") == "25"
    assert get_value(s, "policy.allow_sender_mismatch") == "false"
    assert get_value(s, "delivery.nameservers") == '["127.0.0.1:5353"]'
    assert get_value(s, "delivery.retry_intervals") == '["5m", "10m", "30m", "1h", "2h", "4h"]'
    for bad in ("limits", "limits.nope", "nope.smtp", "limits.max_message_size.x"):
        with pytest.raises(ConfigError) as e:
            get_value(s, bad)
        assert repr(bad) in str(e.value)


def test_set_value_validates_writes_and_keeps_comments(tmp_path):
    path = write_home(tmp_path)
    before = path.read_text()
    s = set_value(tmp_path, "limits.max_message_size", "10M")
    assert s.limits.max_message_size == 10 * 1024 ** 2
    text = path.read_text()
    assert 'max_message_size = "10M"  # 552 5.3.4 above it' in text
    assert "# coremail configuration." in text            # the header comment stays
    assert "# A port of 0 turns that listener off." in text
    # Nothing else changed: same lines but the one.
    diff = [(a, b) for a, b in zip(before.splitlines(), text.splitlines()) if a != b]
    assert len(diff) == 1 and len(before.splitlines()) == len(text.splitlines())
    assert load_settings(tmp_path).limits.max_message_size == 10 * 1024 ** 2

    set_value(tmp_path, "listen.smtp", "2525")
    set_value(tmp_path, "policy.allow_sender_mismatch", "true")
    set_value(tmp_path, "server.hostname", "42")        # a str key keeps digits as text
    set_value(tmp_path, "delivery.nameservers", '["127.0.0.1:5353"]')
    set_value(tmp_path, "limits.max_line_length", "8192")  # commented out in the template
    s = load_settings(tmp_path)
    assert s.listen.smtp == 2525 and s.policy.allow_sender_mismatch is True
    assert s.server.hostname == "42"
    assert s.delivery.nameservers == ["127.0.0.1:5353"]
    assert s.limits.max_line_length == 8192
    assert "smtp = 2525             # MX: mail from the world" in path.read_text()
    assert [p.name for p in path.parent.iterdir() if p.is_file()] == ["coremail.toml"]


@pytest.mark.parametrize("key, value, words", [
    ("limits.max_message_size", "lots", "limits.max_message_size"),
    ("listen.smtp", "-1", "listen.smtp"),
    ("listen.smtp", "smtp", "listen.smtp"),
    ("policy.allow_sender_mismatch", "maybe", "policy.allow_sender_mismatch"),
    ("log.level", "loud", "log.level"),
    ("limits.bogus", "1", "unknown key"),
    ("bogus.key", "1", "unknown section"),
    ("limits", "1", "SECTION.NAME"),
])
def test_set_value_refuses_and_leaves_the_file_alone(tmp_path, key, value, words):
    path = write_home(tmp_path)
    before, st = path.read_bytes(), path.stat()
    with pytest.raises(ConfigError) as e:
        set_value(tmp_path, key, value)
    assert words in str(e.value)
    assert path.read_bytes() == before
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (st.st_mtime_ns, st.st_ino)
    assert sorted(p.name for p in path.parent.iterdir()) == ["coremail.toml"]


def test_set_value_writes_atomically(tmp_path, monkeypatch):
    path = write_home(tmp_path)
    before = path.read_text()
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        # At the moment of the switch the old file is still whole and the new one complete.
        seen.append((Path(src).read_text(), Path(dst).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(settings_service.os, "replace", spy)
    set_value(tmp_path, "limits.max_recipients", "50")
    assert len(seen) == 1
    new, old = seen[0]
    assert old == before and "max_recipients = 50" in new
    assert path.read_text() == new


def test_set_value_failing_midway_leaves_the_old_file(tmp_path, monkeypatch):
    path = write_home(tmp_path)
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_service.os, "fsync", no_space)
    with pytest.raises(OSError):
        set_value(tmp_path, "limits.max_recipients", "50")
    assert path.read_bytes() == before


def test_set_value_result_is_picked_up_by_a_watcher(tmp_path):
    write_home(tmp_path)
    w = ConfigWatcher(tmp_path)
    set_value(tmp_path, "limits.max_recipients", "3")
    assert w.poll() is True and w.current.limits.max_recipients == 3
    set_value(tmp_path, "limits.max_recipients", "4")   # same length, same tick
    assert w.poll() is True and w.current.limits.max_recipients == 4


def test_settings_model_has_the_interface_sections():
    for section in ("server", "listen", "delivery", "limits", "policy"):
        assert section in Settings.model_fields
