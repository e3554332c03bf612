"""What an operator sees (issue 17): `coremail filter test FILE` shows the
scan's result; `coremail status` says whether clamd answers (its clamd line)."""
from __future__ import annotations

from coremail.cli.coremail import clamd_line
from coremail.services.settings import set_value
from tests.support.clamd import EICAR, SIGNATURE
from tests.support.home import make_home
from .conftest import mail, zipped


def test_filter_test_and_status_show_clamd(clamd, tmp_path, capsys):
    home = make_home(tmp_path / "home")
    set_value(home.path, "antivirus.clamd", f'"{clamd.address}"')
    home.userutil("add", "bob@example.test", "--password", "pw-bob-12345", check=True)
    virus = tmp_path / "virus.eml"
    virus.write_bytes(mail(("files.zip", zipped(("eicar.txt", EICAR)))))
    out = home.coremail("filter", "test", str(virus), "--to", "bob@example.test").stdout
    assert f"virus found: {SIGNATURE}" in out and "554" in out
    clean = tmp_path / "clean.eml"
    clean.write_bytes(mail(("a.txt", b"hello")))
    out = home.coremail("filter", "test", str(clean), "--to", "bob@example.test").stdout
    assert "X-Virus-Status: Clean" in out
    clamd_line(home.path)
    assert f"clamd\tanswering\t-\t{clamd.address}\tClamAV " in capsys.readouterr().out
    set_value(home.path, "antivirus.clamd", f'"unix:{tmp_path}/gone.sock"')
    clamd_line(home.path)
    assert "clamd\tnot answering\t-\t" in capsys.readouterr().out
