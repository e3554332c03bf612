"""Reading: the folder list with unread counts, a folder's messages (newest
first, paged), one message (decoded, sanitised; opening it sets \\Seen)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...mail.mime import summarize
from ...store.interfaces import BlobMissing
from ..i18n import _
from ..render import show
from ..site import Site, WebContext, error_page, render
from .common import no_folder, no_message, signed_in

PAGE = 50


def reading_routes(site: Site, web: WebContext) -> list[Route]:
    async def folder(request: Request) -> Response:
        got, away = await signed_in(web, site, request)
        if away:
            return away
        _s, user = got
        name = request.path_params.get("name", "INBOX")
        folders = await web.run(lambda: web.store.list_folders(user.id, counts=True))
        current = next((f for f in folders if f.name == name), None)
        if current is None:
            return no_folder(site, request, name)
        try:
            page = max(0, int(request.query_params.get("page", "0")))
        except ValueError:
            page = 0
        msgs = await web.run(lambda: web.store.list_messages(current.id, with_meta=True))
        msgs.reverse()    # newest first
        shown = msgs[page * PAGE:(page + 1) * PAGE]
        return render(site, request, "folder.html", folders=folders, current=current,
                      messages=shown, page=page, pages=max(1, -(-len(msgs) // PAGE)))

    async def message(request: Request) -> Response:
        got, away = await signed_in(web, site, request)
        if away:
            return away
        _s, user = got
        m = await web.run(web.store.get_message, int(request.path_params["id"]))
        f = m and await web.run(web.store.get_folder_by_id, m.folder_id)
        if m is None or f is None or f.user_id != user.id:
            return no_message(site, request)
        try:
            raw = await web.run(web.store.blobs.read, m.blob_id)
        except BlobMissing:
            return error_page(site, request, 404, _("Message removed"),
                              _("This message was deleted meanwhile."))
        meta = m.meta
        if meta is None:
            meta = await web.run(summarize, raw)
        if "\\Seen" not in m.flags:
            await web.run(lambda: web.mailboxes.set_flags(f.id, [m.uid], frozenset({"\\Seen"}),
                                                          "add"))
        view = show(raw, meta, load_images=request.query_params.get("images") == "1")
        folders = await web.run(lambda: web.store.list_folders(user.id, counts=True))
        return render(site, request, "message.html", m=m, view=view, folders=folders, current=f)

    return [Route(site.root, folder),
            Route(site.root + "folder/{name:path}", folder),
            Route(site.root + "message/{id:int}", message)]
