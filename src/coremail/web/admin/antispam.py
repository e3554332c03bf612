"""The webadmin's Anti-spam page: the `[antispam]` keys and the inbound
sender checks' switches (saved as `coremail config set` does), the rules
of `coremail filter` with their hit counts (added and deleted through
services.filters.FilterAdmin, the CLI's code, each change audited), and
"test a message", which shows what `coremail filter test` prints for a
pasted or uploaded message: the same engine, nothing counted or changed."""
from __future__ import annotations

import ipaddress

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...config import load_settings
from ...services.filters import FilterAdmin, RuleError, action_text
from ...services.settings import describe
from ...store.interfaces import FilterRule
from ..i18n import N_, _
from ..site import checked_form
from .console import (PREFIX, Console, admin_or_refusal, admin_post, back, forbidden, page,
                      save_keys)

# The switches of checks that live outside [antispam], shown on this page too.
CHECK_KEYS = ("authentication.spf", "authentication.dkim_verify", "authentication.dmarc")
KINDS = {"ip": N_("client address"), "sender": N_("sender"),
         "keyword": N_("keyword"), "header": N_("header rule")}
ACTIONS = {"reject": N_("refuse"), "junk": N_("to Junk"), "allow": N_("allow"),
           "score": N_("add points")}


def rule_text(r: FilterRule) -> str:
    """A rule as the audit log keeps it (the CLI's spelling)."""
    return f"{r.kind} {r.pattern} {action_text(r)} ({r.user or 'server'})"


def _action(form: dict[str, str]) -> str:
    act = form.get("action", "reject")
    return f"score:{form.get('points', '').strip()}" if act == "score" else act


async def _message(form) -> tuple[bytes, dict[str, str]]:
    """The message to test (an uploaded file wins over pasted text) and the
    other fields as text."""
    upload = form.get("upload")
    raw = b""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not raw.strip():
        raw = fields.get("message", "").encode("utf-8")
    return raw, fields


def routes(c: Console) -> list[Route]:
    def filters() -> FilterAdmin:
        return FilterAdmin(c.store, c.ctx.settings)

    async def show(request: Request, *, status: int = 200, bad: dict | None = None,
                   typed: dict | None = None, rule_error: str = "", rule_values=None,
                   test_error: str = "", test_values=None, report=None) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        current = await c.run(load_settings, c.home)
        views = {k.key: k for s in describe(current) for k in s.keys}
        keys = [k for key, k in views.items() if key.startswith("antispam.")]
        keys += [views[k] for k in CHECK_KEYS]
        rules = await c.run(filters().list)
        return await page(
            c, request, "antispam.html", status, keys=keys, bad=bad or {}, typed=typed or {},
            lists=[r for r in rules if r.kind in ("ip", "sender")],
            content=[r for r in rules if r.kind in ("keyword", "header")],
            kinds=KINDS, actions=ACTIONS, rule_error=rule_error, rv=rule_values or {},
            test_error=test_error, tv=test_values or {}, report=report)

    async def antispam(request: Request) -> Response:
        return await show(request)

    @admin_post(c)
    async def settings_save(request: Request, form: dict[str, str]) -> Response:
        return await save_keys(c, request, form, "/antispam", lambda rq, bad, typed: show(
            rq, status=400, bad=bad, typed=typed))

    @admin_post(c)
    async def rule_add(request: Request, form: dict[str, str]) -> Response:
        try:
            r = await c.run(lambda: filters().add(
                form.get("kind", ""), form.get("pattern", ""), _action(form),
                user=form.get("user", "").strip() or None, note=form.get("note", "")))
        except RuleError as e:
            return await show(request, status=400, rule_values=form,
                              rule_error=_("The rule was not added: %(why)s.") % {"why": e})
        await c.run(c.record, request, "filter.add", f"rule {r.id}", "", rule_text(r))
        return back("/antispam", "rule_added", r.id)

    @admin_post(c)
    async def rule_delete(request: Request, form: dict[str, str]) -> Response:
        try:
            rule_id = int(form.get("id", ""))
        except ValueError:
            rule_id = 0
        old = next((r for r in await c.run(filters().list) if r.id == rule_id), None)
        if old is None or not await c.run(filters().delete, rule_id):
            return await show(request, status=404,
                              rule_error=_("There is no rule %(id)s (any more).") % {
                                  "id": form.get("id", "")})
        await c.run(c.record, request, "filter.delete", f"rule {rule_id}", rule_text(old), "")
        return back("/antispam", "rule_deleted", rule_id)

    async def test(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        form = await checked_form(request, request.state.session)
        if form is None:
            return await forbidden(c, request)
        raw, fields = await _message(form)
        ip = fields.get("ip", "").strip() or "127.0.0.1"
        error = ""
        limit = int(c.ctx.settings.limits.max_message_size)
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            error = _("“%(ip)s” is not an IP address (e.g. 192.0.2.7 or 2001:db8::7).") % {
                "ip": ip}
        if not raw.strip():
            error = _("Paste a message (its headers, a blank line, its body) or choose a file.")
        elif len(raw) > limit:
            error = _("The message is larger than limits.max_message_size (%(n)s bytes).") % {
                "n": limit}
        if error:
            return await show(request, status=400, test_error=error, test_values=fields)
        to = [a for a in fields.get("to", "").replace(",", " ").split() if a]
        settings = c.ctx.settings
        report = await c.run(lambda: FilterAdmin(c.store, settings).test(
            raw, ip=ip, sender=fields.get("sender", "").strip() or None, recipients=to,
            helo=fields.get("helo", "").strip()))
        return await show(request, test_values=fields, report=report.lines(settings))

    p = PREFIX
    return [
        Route(f"{p}/antispam", antispam, methods=["GET"]),
        Route(f"{p}/antispam/settings", settings_save, methods=["POST"]),
        Route(f"{p}/antispam/rules/add", rule_add, methods=["POST"]),
        Route(f"{p}/antispam/rules/delete", rule_delete, methods=["POST"]),
        Route(f"{p}/antispam/test", test, methods=["POST"]),
    ]
