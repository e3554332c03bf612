"""Settings: the display name, the password (the old one required, checked
off the event loop), auto-forward with or without a local copy (the same
setting as `userutil forward`, through services.accounts), and the
signature that new messages, replies and forwards start with."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services.accounts import AccountError, Accounts, check_password
from ...services.passwords import verify_password
from ..i18n import N_, _
from ..site import Site, WebContext, redirect, render
from .common import signed

NOTICES = {"name": N_("Your name was saved."), "password": N_("Your password was changed."),
           "forward": N_("Forwarding was saved."), "forward_off": N_("Forwarding is off."),
           "signature": N_("Your signature was saved.")}
MAX_SIGNATURE = 2000


def settings_routes(site: Site, web: WebContext) -> list[Route]:
    accounts = Accounts(web.store, web.ctx.settings.server.domain)

    async def show(request: Request, user, errors=None, values=None, status=200) -> Response:
        fwd = await web.run(web.store.get_forward, user.id)
        sig = await web.run(web.store.get_setting, user.address, "signature") or ""
        folders = await web.run(lambda: web.counts.folders(user.id))
        return render(site, request, "settings.html", status, forward=fwd, signature=sig,
                      errors=errors or {}, values=values or {}, folders=folders, current=None)

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
        return redirect(site.root + "settings")

    return [Route(site.root + "settings", settings_page, methods=["GET"]),
            Route(site.root + "settings/{what:str}", change, methods=["POST"])]
