"""One line of `coremail doctor`: a check's name, "ok", "warn" or "fail",
what was found, and what to do about it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    check: str
    status: str        # "ok", "warn" or "fail"
    words: str
    todo: str = ""

    def line(self) -> str:
        text = f"{self.status:<4} {self.check}: {self.words}"
        return text + (f"; to do: {self.todo}" if self.todo and self.status != "ok" else "")


def ok(check: str, words: str) -> Finding:
    return Finding(check, "ok", words)


def warn(check: str, words: str, todo: str) -> Finding:
    return Finding(check, "warn", words, todo)


def fail(check: str, words: str, todo: str) -> Finding:
    return Finding(check, "fail", words, todo)
