"""Writing: compose and send through services.send (the same limits, sender
policy, quota, queue and verdict words as port 587); a bad address is shown
next to its field and the typed text is never lost."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...mail.address import AddressError, parse_address
from ...store.interfaces import StoreError
from ..i18n import N_, _
from ..site import Site, WebContext, redirect, render
from .common import signed

FIELDS = ("to", "cc", "bcc")
NOTICES = {"sent": N_("Your message was sent.")}


def writing_routes(site: Site, web: WebContext) -> list[Route]:
    @signed(web, site)
    async def compose_page(request: Request, user) -> Response:
        return render(site, request, "compose.html", values={}, errors={})

    @signed(web, site, post=True)
    async def send(request: Request, user, form) -> Response:
        values = {k: str(form.get(k, "")) for k in (*FIELDS, "subject", "body")}
        errors: dict[str, str] = {}
        rcpts: list[str] = []
        heads: dict[str, list[str]] = {}
        for field in FIELDS:
            heads[field] = []
            for name, addr in getaddresses([values[field]]):
                if not addr.strip():
                    continue
                try:
                    a = str(parse_address(addr))
                except AddressError as e:
                    errors[field] = f"{addr.strip()}: {e}"
                    continue
                rcpts.append(a)
                heads[field].append(f"{name} <{a}>" if name else a)
        if not rcpts and "to" not in errors:
            errors["to"] = _("Add at least one recipient.")

        def again(status: int = 200, notice: str | None = None) -> Response:
            return render(site, request, "compose.html", status, values=values, errors=errors,
                          flashes=[("error", notice)] if notice else [])
        if errors:
            return again()
        msg = EmailMessage()
        msg["From"] = f"{user.name} <{user.address}>" if user.name else user.address
        if heads["to"]:
            msg["To"] = ", ".join(heads["to"])
        if heads["cc"]:
            msg["Cc"] = ", ".join(heads["cc"])
        msg["Subject"] = values["subject"]
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=user.domain)
        msg.set_content(values["body"].replace("\r\n", "\n"))
        raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        ip = request.client.host if request.client else "127.0.0.1"
        try:
            result = await web.sender.send(user, ip=ip, sender=user.address, recipients=rcpts,
                                           content=raw)
        except StoreError as e:
            return again(503, _("The message could not be sent: {reason}. Your text is still "
                                "here; try again, or ask an administrator to run “coremail "
                                "doctor”.").format(reason=e.text))
        if not result.ok:
            for addr, v in result.refused.items():
                field = next((f for f in FIELDS if addr in values[f]), "to")
                errors[field] = f"{addr}: {v.text}"
            return again(notice=None if errors else
                         _("Not sent: {reason}").format(reason=result.verdict.text))
        web.ctx.log.info("web.sent", user=user.address, qid=result.qid, rcpts=len(rcpts))
        return redirect(site.root + "?done=sent")

    return [Route(site.root + "compose", compose_page, methods=["GET"]),
            Route(site.root + "compose", send, methods=["POST"])]
