"""Helpers the webmail's page modules share: the signed-in user or the sign-in
redirect, the user's own folder or message (anyone else's is "not found")."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from ..i18n import _
from ..site import Site, WebContext, error_page, redirect, session_of


async def signed_in(web: WebContext, site: Site, request: Request):
    got = await session_of(web, request)
    if got is None:
        nxt = request.url.path + ("?" + request.url.query if request.url.query else "")
        return None, redirect(site.login_url + "?next=" + quote(nxt, safe=""))
    return got, None


def no_message(site: Site, request: Request):
    return error_page(site, request, 404, _("No such message"),
                      _("This message is not in your mailbox (any more)."))


def no_folder(site: Site, request: Request, name: str):
    return error_page(site, request, 404, _("No such folder"),
                      _("There is no folder called {name}.").format(name=name))
