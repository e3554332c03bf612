"""Fixtures for the command-line tests: a home made once per session and
copied per test, and a runner for the real installed commands."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from coremail.services.home import init_home

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "Adm1n-secret"
DOMAIN = "example.test"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("COREMAIL_")}
    env.update(extra)
    return env


@dataclass
class Cli:
    home: Path

    def run(self, tool: str, *args: str, home: bool = True, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        argv = [str(BIN / tool), *args] + (["--home", str(self.home)] if home else [])
        return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env=env if env is not None else clean_env(), cwd=cwd)

    def userutil(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("userutil", *args, **kw)

    def coremail(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("coremail", *args, **kw)

    def start_many(self, tool: str, *argvs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
        """Run independent commands at once (each costs an interpreter start)."""
        procs = [subprocess.Popen([str(BIN / tool), *a, "--home", str(self.home)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=clean_env()) for a in argvs]
        out = []
        for a, p in zip(argvs, procs):
            stdout, stderr = p.communicate(timeout=60)
            out.append(subprocess.CompletedProcess(list(a), p.returncode, stdout, stderr))
        return out


@pytest.fixture(scope="session")
def template_home(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "home"
    init_home(path, DOMAIN, admin_password=ADMIN_PASSWORD, privileged=False)
    return path


@pytest.fixture
def cli(template_home, tmp_path) -> Cli:
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    return Cli(home)
