"""What the webmail's page modules share: its Site (the folder names IMAP
keeps, shown translated), the signed-in user or the sign-in redirect, and
the "not found" pages."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request

from ..i18n import N_, _, gettext
from ..site import (Site, WebContext, checked_form, error_page, forbidden, redirect,
                    session_of)

FOLDER_NAMES = {"INBOX": N_("Inbox"), "Sent": N_("Sent"), "Drafts": N_("Drafts"),
                "Junk": N_("Junk"), "Trash": N_("Trash")}


def folder_label(name: str) -> str:
    return gettext(FOLDER_NAMES[name]) if name in FOLDER_NAMES else name


def webmail_site(notices: dict[str, str]) -> Site:
    site = Site("/coremail/", Path(__file__).resolve().parent / "templates", dict(notices))
    site.env.filters["folder"] = folder_label
    site.env.filters["leaf"] = lambda n: folder_label(n).rpartition("/")[2]
    site.env.filters["depth"] = lambda n: n.count("/")
    return site


def signed(web: WebContext, site: Site, *, post: bool = False):
    """A page for the signed-in user only: `fn(request, user)`, or for a POST
    `fn(request, user, form)` once its CSRF token checked out (else 403).
    Anyone else is sent to sign in and back."""
    def wrap(fn):
        async def handler(request: Request):
            got = await session_of(web, request)
            if got is None:
                nxt = request.url.path + ("?" + request.url.query if request.url.query else "")
                return redirect(site.login_url + "?next=" + quote(nxt, safe=""))
            s, user = got
            if not post:
                return await fn(request, user)
            form = await checked_form(request, s)
            if form is None:
                return forbidden(site, request)
            return await fn(request, user, form)
        return handler
    return wrap


def no_message(site: Site, request: Request):
    return error_page(site, request, 404, _("No such message"),
                      _("This message is not in your mailbox (any more)."))


def no_folder(site: Site, request: Request, name: str):
    return error_page(site, request, 404, _("No such folder"),
                      _("There is no folder called {name}.").format(name=name))
