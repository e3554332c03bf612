"""`coremail dns DOMAIN`: every record to publish, ready to paste; rotation
keeps the old selector until it is removed."""
from __future__ import annotations

import re

from tests.support.home import make_home


def test_records_rotation_and_removal(tmp_path):
    home = make_home(tmp_path / "home", workers=1)
    out = home.coremail("dns", "example.test", "--ip", "192.0.2.10", check=True).stdout
    assert re.search(r"^example\.test\.\s+3600\s+IN\s+MX\s+10 mail\.example\.test\.$", out, re.M)
    assert '"v=spf1 mx ip4:192.0.2.10 -all"' in out
    assert re.search(r'^_dmarc\.example\.test\.\s.*TXT\s+"v=DMARC1; p=quarantine', out, re.M)
    assert re.search(r"^10\.2\.0\.192\.in-addr\.arpa\.\s.*PTR\s+mail\.example\.test\.$", out, re.M)
    sels = re.findall(r"^(\S+)\._domainkey\.example\.test\.", out, re.M)
    assert len(sels) == 2 and 'k=ed25519' in out and 'k=rsa; p=' in out
    assert all(len(s) <= 257 for s in re.findall(r'"[^"]*"', out))   # 255 octets a string
    for line in out.splitlines():
        assert line == "" or line.startswith(";") or "\tIN\t" in line

    rotated = home.coremail("dns", "example.test", "--rotate", check=True).stdout
    new = re.findall(r"^(\S+)\._domainkey\.example\.test\.", rotated, re.M)
    assert len(new) == 4 and set(sels) < set(new)
    assert rotated.count("retired") == 2
    refused = home.coremail("dns", "example.test", "--remove", new[0])
    assert refused.returncode != 0 and "rotate first" in refused.stderr
    home.coremail("dns", "example.test", "--remove", sels[0], check=True)
    after = home.coremail("dns", "example.test", check=True).stdout
    assert len(re.findall(r"\._domainkey\.", after)) == 3
    assert "1.0.0.127.in-addr.arpa." in after   # without --ip: listen.address
    bad = home.coremail("dns", "nowhere.test")
    assert bad.returncode == 2 and "not a local domain" in bad.stderr
    added = home.userutil("domain", "add", "second.test", check=True).stdout
    assert "DKIM selectors" in added
    assert "second.test" in home.coremail("dns", "second.test", check=True).stdout
