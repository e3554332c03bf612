"""Webadmin pages for domains, users, aliases and auto-forwards: thin
routes over services.accounts (the code userutil runs), each change written
to the audit log with the value before and after."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...config import parse_size
from ...services.accounts import AccountError
from ..i18n import _
from .console import (PREFIX, Console, admin_or_refusal, back, forbidden, form_of, page)

PER_PAGE = 50


def _int(text: str | None, default: int = 0) -> int:
    try:
        return max(0, int(text or default))
    except ValueError:
        return default


def _quota_text(n: int) -> str:
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def _user_form(form: dict[str, str]) -> dict[str, object]:
    """The fields of the add and the edit user forms, checked: name, quota
    (bytes; None when left empty), admin and enabled (ticked or not)."""
    text = form.get("quota", "").strip()
    try:
        quota = parse_size(text) if text else None
    except ValueError as e:
        raise AccountError(f"bad quota: {e}") from None
    return {"name": form.get("name", "").strip(), "quota": quota,
            "enabled": form.get("enabled") == "1", "admin": form.get("admin") == "1"}


def routes(c: Console) -> list[Route]:
    async def domains(request: Request, error: str = "", status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        usage = await c.run(c.accounts().domain_usage)
        return await page(c, request, "domains.html", status, usage=usage, error=error,
                          primary=c.ctx.settings.server.domain)

    async def domain_add(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        try:
            d = await c.run(c.accounts().add_domain, form.get("domain", ""))
        except AccountError as e:
            return await domains(request, str(e), 400)
        await c.run(c.record, request, "domain.add", d.name, "", d.name)
        return back("/domains", "domain_added", d.name)

    async def domain_delete(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        name = form.get("domain", "")
        if name == c.ctx.settings.server.domain:
            return await domains(request, _("The primary domain (server.domain) cannot be "
                                            "deleted."), 400)
        try:
            await c.run(c.accounts().delete_domain, name)
        except AccountError as e:
            return await domains(request, str(e), 400)
        await c.run(c.record, request, "domain.delete", name, name, "")
        return back("/domains", "domain_deleted", name)

    # ---------------------------------------------------------------- users
    async def users(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        q = request.query_params.get("q", "")
        domain = request.query_params.get("domain", "")
        pg = _int(request.query_params.get("page"))
        accounts = c.accounts()
        try:
            found, total = await c.run(lambda: accounts.find_users(
                q, domain or None, page=pg, per_page=PER_PAGE))
        except AccountError as e:
            return await page(c, request, "users.html", 400, users=[], total=0,
                              q=q, domain=domain, page=pg, pages=1, error=str(e),
                              domains=await c.run(accounts.list_domains))
        return await page(c, request, "users.html", users=found, total=total, q=q,
                          domain=domain, page=pg, pages=max(1, -(-total // PER_PAGE)),
                          error="", domains=await c.run(accounts.list_domains))

    async def user_new(request: Request, values: dict | None = None, error: str = "",
                       status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        accounts = c.accounts()
        return await page(c, request, "user_new.html", status, values=values or {},
                          error=error, domains=await c.run(accounts.list_domains),
                          default_quota=str(c.ctx.settings.limits.default_quota))

    async def user_add(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        address = form.get("address", "").strip()
        if form.get("password", "") != form.get("password2", ""):
            return await user_new(request, form, _("The two passwords differ."), 400)
        try:
            f = _user_form(form)
            user = await c.run(lambda: c.accounts().add_user(
                address, form.get("password", ""), quota=f["quota"], name=f["name"],
                admin=f["admin"]))
        except AccountError as e:
            return await user_new(request, form, str(e), 400)
        await c.run(c.record, request, "user.add", user.address, "",
                    f"quota={_quota_text(user.quota)} name={user.name!r} admin={user.admin}")
        return back(f"/user/{user.address}", "user_added", user.address)

    async def user_page(request: Request, error: str = "", status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        try:
            user = await c.run(c.accounts().get, request.path_params["address"])
        except AccountError as e:
            return await page(c, request, "missing.html", 404, text=str(e))
        fwd = await c.run(c.store.get_forward, user.id)
        return await page(c, request, "user.html", status, u=user, fwd=fwd,
                          quota_text=_quota_text(user.quota), error=error,
                          me=request.state.user)

    async def user_save(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        accounts = c.accounts()
        try:
            user = await c.run(accounts.get, request.path_params["address"])
            wanted = _user_form(form)
            wanted["quota"] = wanted["quota"] or 0        # empty on this form: no limit
            fields = {k: v for k, v in wanted.items() if v != getattr(user, k)}
            if user.id == request.state.user.id and False in (fields.get("enabled"),
                                                               fields.get("admin")):
                raise AccountError(_("You cannot take away your own sign-in or admin "
                                     "right here; another administrator can."))
            if fields:
                new = await c.run(lambda: accounts.update(user.address, **fields))
                for k in fields:
                    old_v, new_v = getattr(user, k), getattr(new, k)
                    if k == "quota":
                        old_v, new_v = _quota_text(old_v), _quota_text(new_v)
                    await c.run(c.record, request, f"user.{k}", user.address, old_v, new_v)
        except AccountError as e:
            return await user_page(request, str(e), 400)
        return back(f"/user/{user.address}", "user_saved", user.address)

    async def user_password(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        address = request.path_params["address"]
        if form.get("password", "") != form.get("password2", ""):
            return await user_page(request, _("The two passwords differ."), 400)
        try:
            user = await c.run(c.accounts().set_password, address, form.get("password", ""))
        except AccountError as e:
            return await user_page(request, str(e), 400)
        await c.run(c.record, request, "user.password", user.address, "", "(a new password)")
        return back(f"/user/{user.address}", "user_password", user.address)

    async def user_delete(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        try:
            user = await c.run(c.accounts().get, request.path_params["address"])
        except AccountError as e:
            return await page(c, request, "missing.html", 404, text=str(e))
        if request.method == "GET":
            return await page(c, request, "user_delete.html", u=user)
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        if user.id == request.state.user.id:
            return await user_page(request, _("You cannot delete your own account."), 400)
        if form.get("confirm") != user.address:
            return await page(c, request, "user_delete.html", 400, u=user,
                              error=_("Type the address exactly to confirm."))
        try:
            await c.run(c.accounts().delete_user, user.address)
        except AccountError as e:
            return await user_page(request, str(e), 400)
        await c.run(c.record, request, "user.delete", user.address,
                    f"{user.used_messages} message(s), {user.used_bytes} bytes", "")
        return back("/users", "user_deleted", user.address)

    async def forward_save(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        accounts = c.accounts()
        address = request.path_params["address"]
        try:
            user = await c.run(accounts.get, address)
            old = await c.run(c.store.get_forward, user.id)
            old_text = f"{old.target}{' (keep a copy)' if old.keep else ''}" if old else ""
            target = form.get("target", "").strip()
            if form.get("off") == "1" or not target:
                await c.run(accounts.clear_forward, user.address)
                await c.run(c.record, request, "forward.off", user.address, old_text, "")
                return back(f"/user/{user.address}", "forward_cleared", user.address)
            keep = form.get("keep") == "1"
            await c.run(accounts.set_forward, user.address, target, keep)
        except AccountError as e:
            return await user_page(request, str(e), 400)
        await c.run(c.record, request, "forward.set", user.address, old_text,
                    f"{target}{' (keep a copy)' if keep else ''}")
        return back(f"/user/{user.address}", "forward_set", user.address)

    # -------------------------------------------------------------- aliases
    async def aliases(request: Request, error: str = "", values: dict | None = None,
                      status: int = 200) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        accounts = c.accounts()
        return await page(c, request, "aliases.html", status,
                          aliases=await c.run(accounts.list_aliases),
                          forwards=await c.run(accounts.list_forwards), error=error,
                          values=values or {})

    async def alias_add(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        try:
            a = await c.run(c.accounts().add_alias, form.get("alias", ""), form.get("target", ""))
        except AccountError as e:
            return await aliases(request, str(e), form, 400)
        await c.run(c.record, request, "alias.add", a.address, "", a.target)
        return back("/aliases", "alias_added", f"{a.address} → {a.target}")

    async def alias_delete(request: Request) -> Response:
        if (refused := await admin_or_refusal(c, request)) is not None:
            return refused
        if (form := await form_of(request)) is None:
            return await forbidden(c, request)
        alias, target = form.get("alias", ""), form.get("target", "")
        try:
            await c.run(c.accounts().delete_alias, alias, target or None)
        except AccountError as e:
            return await aliases(request, str(e), None, 400)
        await c.run(c.record, request, "alias.delete", alias, target, "")
        return back("/aliases", "alias_deleted", f"{alias} → {target}")

    p = PREFIX
    return [
        Route(f"{p}/domains", domains, methods=["GET"]),
        Route(f"{p}/domains/add", domain_add, methods=["POST"]),
        Route(f"{p}/domains/delete", domain_delete, methods=["POST"]),
        Route(f"{p}/users", users, methods=["GET"]),
        Route(f"{p}/users/new", user_new, methods=["GET"]),
        Route(f"{p}/users/new", user_add, methods=["POST"]),
        Route(f"{p}/user/{{address}}", user_page, methods=["GET"]),
        Route(f"{p}/user/{{address}}", user_save, methods=["POST"]),
        Route(f"{p}/user/{{address}}/password", user_password, methods=["POST"]),
        Route(f"{p}/user/{{address}}/forward", forward_save, methods=["POST"]),
        Route(f"{p}/user/{{address}}/delete", user_delete, methods=["GET", "POST"]),
        Route(f"{p}/aliases", aliases, methods=["GET"]),
        Route(f"{p}/aliases/add", alias_add, methods=["POST"]),
        Route(f"{p}/aliases/delete", alias_delete, methods=["POST"]),
    ]
