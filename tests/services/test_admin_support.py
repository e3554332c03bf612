"""What the webadmin's pages stand on, without a browser: the settings form
built from the typed configuration and saved like `coremail config set`
(all keys or none, each problem by key), the 24-hour counts read from the
logs (incrementally), and the certificate and disk figures."""
from __future__ import annotations

import time

import pytest

from coremail.config import ConfigError, Settings, load_settings
from coremail.services import health
from coremail.services.settings import changed, describe, get_value, literal, set_values
from coremail.services.traffic import Traffic, classify, totals
from tests.support.home import init_test_home


@pytest.fixture
def home(tmp_path):
    return init_test_home(tmp_path / "home")


def test_the_form_has_every_key_with_help_and_what_is_allowed(home):
    views = describe(load_settings(home))
    keys = {k.key: k for s in views for k in s.keys}
    assert set(keys) == {f"{s}.{n}" for s, f in Settings.model_fields.items()
                         for n in f.annotation.model_fields}
    size = keys["limits.max_message_size"]
    assert size.value == "50M" and "552 5.3.4" in size.help and "K, M or G" in size.allowed
    assert keys["limits.max_recipients"].allowed == "a whole number from 1 to 100000"
    flag = keys["policy.allow_sender_mismatch"]
    assert flag.kind == "bool" and flag.choices == ("true", "false") and "553 5.7.1" in flag.help
    assert keys["log.level"].choices == ("debug", "info", "warning", "error")
    assert keys["delivery.retry_intervals"].value.splitlines()[0] == "5m"
    assert keys["listen.smtp"].restart and not keys["limits.max_recipients"].restart
    # Each key's help is its comment in the file `coremail init` writes.
    assert [k for k, v in keys.items() if not v.help] == []


def test_saving_is_config_set_all_or_nothing(home):
    s = load_settings(home)
    form = {"limits.max_message_size": "20M", "limits.max_recipients": "100",
            "delivery.nameservers": "127.0.0.1:5353\n127.0.0.2:53"}
    diff = changed(s, form)
    assert diff == {"limits.max_message_size": ("50M", "20M"),
                    "delivery.nameservers": ("[]", '["127.0.0.1:5353", "127.0.0.2:53"]')}
    assert literal("delivery.nameservers", "a, b") == '["a", "b"]'
    with pytest.raises(ConfigError) as e:
        set_values(home, {"limits.max_message_size": "20M", "limits.max_recipients": "0"})
    assert set(e.value.problems) == {"limits.max_recipients"}
    assert "greater than or equal to 1" in e.value.problems["limits.max_recipients"]
    assert get_value(load_settings(home), "limits.max_message_size") == "50M"   # untouched
    set_values(home, {k: new for k, (_, new) in diff.items()})
    after = load_settings(home)
    assert get_value(after, "limits.max_message_size") == "20M"
    assert after.delivery.nameservers == ["127.0.0.1:5353", "127.0.0.2:53"]
    assert "# 552 5.3.4 above it" in (home / "conf" / "coremail.toml").read_text()  # comments kept


def _line(t: float, event: str, **kw) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
    return " ".join([f"ts={ts} level=info svc=x event={event}"]
                    + [f"{k}={v}" for k, v in kw.items()]) + "\n"


def test_traffic_counts_from_the_logs_read_once(tmp_path):
    now = time.time()
    smtp, agent = tmp_path / "smtp.log", tmp_path / "deliveragent.log"
    old = "".join(_line(now - 30 * 3600, "smtp.message", result="250/2.0.0") for _ in range(3000))
    smtp.write_text(old + _line(now - 3600, "smtp.message", result="250/2.0.0")
                    + _line(now - 60, "smtp.message", result="552/5.3.4")
                    + _line(now - 60, "smtp.abandoned", rcpts="<a@b>=550")
                    + _line(now - 60, "smtp.abandoned", rcpts="<a@b>=250"))
    agent.write_text(_line(now - 60, "delivery", rcpt="x@far", host="mx.far", result="sent")
                     + _line(now - 60, "delivery", rcpt="me@here", host="local", result="sent")
                     + _line(now - 60, "delivery", rcpt="y@far", host="mx.far", result="deferred")
                     + _line(now - 60, "queue.bounced", rcpt="z@far"))
    traffic = Traffic(tmp_path)
    hours = traffic.last_day(now)
    assert len(hours) == 24 and totals(hours) == {"received": 1, "sent": 1, "refused": 2,
                                                  "bounced": 1}
    first_offset = traffic.tails[0].offset
    with smtp.open("a") as f:
        f.write(_line(now, "smtp.message", result="250/2.0.0"))
    assert totals(traffic.last_day(now))["received"] == 2            # only the new line read
    assert traffic.tails[0].offset > first_offset
    smtp.write_text(_line(now, "smtp.message", result="250/2.0.0"))   # rotated: read anew
    assert totals(Traffic(tmp_path).last_day(now))["received"] == 1
    assert classify("ts=x event=smtp.close") is None


def test_certificate_and_disk(home):
    cert = health.certificate(home / "conf" / "tls")
    assert cert.subject == "mail.example.test" and cert.days_left > 300 and not cert.warn
    assert health.certificate(home / "nowhere").warn
    d = health.disk(home / "data")
    assert d.total_bytes > d.free_bytes > 0 and 0 < d.bytes_share <= 1
