"""Settings: the display name, the password (the old one required, checked
off the event loop), auto-forward with or without a local copy (the same
setting as `userutil forward`, through services.accounts), the signature
that new messages, replies and forwards start with, and the user's own
block and allow lists (the `coremail filter --user` sender rules, through
services.filters: they apply to mail for this user only)."""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services.accounts import AccountError, Accounts, check_password
from ...services.filters import OWN_ACTIONS, FilterAdmin, RuleError
from ...services.passwords import verify_password
from ..i18n import N_, _
from ..site import Site, WebContext, redirect, render
from .common import signed

NOTICES = {"name": N_("Your name was saved."), "password": N_("Your password was changed."),
           "forward": N_("Forwarding was saved."), "forward_off": N_("Forwarding is off."),
           "signature": N_("Your signature was saved."),
           "sender_added": N_("{n} is on your list now."),
           "sender_removed": N_("{n} was taken off your list.")}
# What each of the user's own choices does, as the list shows it.
OWN_LABELS = {"junk": N_("Blocked: goes to Junk"), "reject": N_("Blocked: refused"),
              "allow": N_("Allowed: never Junk")}
MAX_SIGNATURE = 2000


def settings_routes(site: Site, web: WebContext) -> list[Route]:
    accounts = Accounts(web.store, web.ctx.settings.server.domain)

    def filters() -> FilterAdmin:
        return FilterAdmin(web.store, web.ctx.settings)

    async def show(request: Request, user, errors=None, values=None, status=200) -> Response:
        fwd = await web.run(web.store.get_forward, user.id)
        sig = await web.run(web.store.get_setting, user.address, "signature") or ""
        folders = await web.run(lambda: web.counts.folders(user.id))
        senders = await web.run(filters().own_senders, user.address)
        return render(site, request, "settings.html", status, forward=fwd, signature=sig,
                      errors=errors or {}, values=values or {}, folders=folders, current=None,
                      senders=senders, own_labels=OWN_LABELS)

    @signed(web, site)
    async def settings_page(request: Request, user) -> Response:
        return await show(request, user)

    @signed(web, site, post=True)
    async def change(request: Request, user, form) -> Response:
        what = request.path_params["what"]
        done = site.root + "settings?done="
        if what == "name":
            name = " ".join(str(form.get("name", "")).split())[:200]
            await web.run(lambda: accounts.update(user.address, name=name))
            return redirect(done + "name")
        if what == "password":
            old, new = str(form.get("old", "")), str(form.get("new", ""))
            if not await web.run(verify_password, user.password_hash, old):
                return await show(request, user, {"old": _("That is not your current password.")})
            if new != str(form.get("again", "")):
                return await show(request, user, {"again": _("The two new passwords differ.")})
            if len(new) < 8:
                return await show(request, user, {"new": _("Use at least 8 characters.")})
            try:
                check_password(new)
                await web.run(accounts.set_password, user.address, new)
            except AccountError:
                return await show(request, user, {"new": _(
                    "The password may not start or end with a space.")})
            web.ctx.log.info("web.password_changed", user=user.address)
            return redirect(done + "password")
        if what == "forward":
            target = str(form.get("target", "")).strip()
            if form.get("mode") == "off" or not target:
                await web.run(accounts.clear_forward, user.address)
                return redirect(done + "forward_off")
            try:
                await web.run(accounts.set_forward, user.address, target, form.get("mode") == "keep")
            except AccountError as e:
                return await show(request, user, {"target": str(e)}, {"target": target})
            return redirect(done + "forward")
        if what == "signature":
            sig = str(form.get("signature", "")).replace("\r\n", "\n").strip()[:MAX_SIGNATURE]
            await web.run(web.store.set_setting, user.address, "signature", sig or None)
            return redirect(done + "signature")
        if what == "senders":
            return await sender_add(request, user, form)
        if what == "senders-delete":
            return await sender_delete(user, form)
        return redirect(site.root + "settings")

    async def sender_add(request: Request, user, form) -> Response:
        pattern = str(form.get("sender", "")).strip()
        action = str(form.get("action", "junk"))
        if action not in OWN_ACTIONS:
            action = "junk"
        try:
            r = await web.run(filters().add_own, user.address, pattern, action)
        except RuleError:
            return await show(request, user, {"sender": _(
                "“%(p)s” is not an address or a domain (e.g. someone@example.com or "
                "example.com).") % {"p": pattern}}, {"sender": pattern}, 400)
        web.ctx.log.info("web.own_rule_added", user=user.address, rule=r.id, action=action)
        return redirect(site.root + "settings?" + urlencode({"done": "sender_added",
                                                              "n": r.pattern}) + "#senders")

    async def sender_delete(user, form) -> Response:
        try:
            rule_id = int(str(form.get("id", "")))
        except ValueError:
            rule_id = 0
        mine = {r.id: r for r in await web.run(filters().own_senders, user.address)}
        if rule_id in mine and await web.run(filters().delete, rule_id, user.address):
            web.ctx.log.info("web.own_rule_deleted", user=user.address, rule=rule_id)
            return redirect(site.root + "settings?" + urlencode(
                {"done": "sender_removed", "n": mine[rule_id].pattern}) + "#senders")
        return redirect(site.root + "settings#senders")

    return [Route(site.root + "settings", settings_page, methods=["GET"]),
            Route(site.root + "settings/{what:str}", change, methods=["POST"])]
