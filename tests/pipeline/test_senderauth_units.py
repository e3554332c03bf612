"""The parts of sender authentication that need no network: DMARC record
parsing, alignment and pct= sampling, authserv-id parsing, the results field."""
from __future__ import annotations

from coremail.dns.resolver import Answer, Status
from coremail.pipeline.senderauth.check import authserv_id, forged_results, results_header
from coremail.pipeline.senderauth.dkimcheck import DkimResult
from coremail.pipeline.senderauth.dmarccheck import aligned, check_dmarc, org_domain, parse_record
from coremail.pipeline.senderauth.spfcheck import SpfResult


class Records:
    def __init__(self, txt: dict[str, str]):
        self.txt = txt
        self.failed: set[str] = set()

    def lookup(self, name, rdtype):
        if name in self.txt:
            return Answer(name, rdtype, Status.OK, (self.txt[name],))
        return Answer(name, rdtype, Status.NXDOMAIN)


def test_org_domain_and_alignment():
    assert org_domain("mail.news.example.co.uk") == "example.co.uk"
    assert org_domain("a.b.example.test") == "example.test"
    assert aligned("news.example.com", "example.com", "r")
    assert not aligned("news.example.com", "example.com", "s")
    assert not aligned("example.net", "example.com", "r")


def test_record_parse():
    assert parse_record("v=DMARC1; p=reject; pct=50")["pct"] == "50"
    assert parse_record("v=spf1 -all") is None
    assert parse_record("p=reject; v=DMARC1") is None   # v= must come first


def test_pct_samples_and_steps_down():
    dns = Records({"_dmarc.ex.test": "v=DMARC1; p=reject; pct=20"})
    spf = SpfResult("fail", "smtp.mailfrom=a@ex.test", "ex.test", "")
    inside = check_dmarc(dns, "ex.test", spf, [], sample=0.1)
    outside = check_dmarc(dns, "ex.test", spf, [], sample=0.5)
    assert (inside.result, inside.applied) == ("fail", "reject")
    assert (outside.result, outside.applied) == ("fail", "quarantine")


def test_invalid_policy_with_rua_is_none_and_temperror():
    dns = Records({"_dmarc.ex.test": "v=DMARC1; p=bogus; rua=mailto:r@ex.test"})
    assert check_dmarc(dns, "ex.test", None, []).policy == "none"

    class Failing(Records):
        def lookup(self, name, rdtype):
            return Answer(name, rdtype, Status.TEMPFAIL)
    assert check_dmarc(Failing({}), "ex.test", None, []).result == "temperror"


def test_dkim_alignment_wins_over_spf_fail():
    dns = Records({"_dmarc.ex.test": "v=DMARC1; p=reject"})
    good = DkimResult("pass", "mail.ex.test", "s", "rsa-sha256", "abc")
    r = check_dmarc(dns, "ex.test", SpfResult("fail", "", "other.test", ""), [good])
    assert r.result == "pass"


def test_authserv_id_and_forged_fields():
    assert authserv_id(" (x) Mail.Example.Test 1; spf=pass") == "mail.example.test"
    header = (b"Received: from x\r\nAuthentication-Results: mail.example.test;\r\n dkim=pass\r\n"
              b"Authentication-Results: other.test; dkim=fail\r\nSubject: s\r\n")
    assert forged_results(header, "mail.example.test") == [
        b"Authentication-Results: mail.example.test;\r\n dkim=pass\r\n"]


def test_results_header_shape():
    spf = SpfResult("pass", "smtp.mailfrom=a@ex.test", "ex.test", "")
    text = results_header("mx.test", spf, [], None)
    assert text == "mx.test;\r\n\tspf=pass smtp.mailfrom=a@ex.test;\r\n\tdkim=none"
