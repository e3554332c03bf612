"""The audit log of administrative changes: who (an address), from which IP,
when, what (an action name and its target) and the value before and after.
The webadmin records every change it makes here and shows the log."""
from __future__ import annotations

from dataclasses import dataclass

from ..store.interfaces import AuditEntry, Store


@dataclass
class Audit:
    store: Store

    def record(self, actor: str, ip: str, action: str, target: str, old: object = "",
               new: object = "") -> AuditEntry:
        return self.store.audit_add(actor=actor, ip=ip, action=action, target=target,
                                    old=_text(old), new=_text(new))

    def page(self, *, actor: str = "", action: str = "", text: str = "",
             since: float | None = None, offset: int = 0,
             limit: int = 50) -> tuple[list[AuditEntry], int]:
        return self.store.audit_list(actor=actor.strip(), action=action.strip(),
                                     text=text.strip(), since=since, offset=offset, limit=limit)


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)
