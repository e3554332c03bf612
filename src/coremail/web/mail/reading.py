"""Reading: the folder list with unread counts, a folder's messages (newest
first, one page read from the store, or the matches of a search with IMAP
SEARCH's semantics), one message (decoded, sanitised; opening it sets
\\Seen, which IMAP sees at once), and its parts (attachments downloaded byte
for byte, inline cid: images)."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...imapd.mailbox import Mailbox
from ...imapd.search import run_search
from ...imapd.values import SearchKey
from ...mail.mime import decoded_body, find_part, part_filename, summarize
from ...store.interfaces import BlobMissing
from ..i18n import N_, _
from ..render import INLINE_IMAGES, part_path, show
from ..site import Site, WebContext, error_page, render
from .common import no_folder, no_message, signed

PAGE = 50
# The search form's fields and the IMAP SEARCH key each one is.
SEARCH_FIELDS = {"text": ("TEXT", N_("Everywhere")), "from": ("FROM", N_("From")),
                 "to": ("TO", N_("To")), "subject": ("SUBJECT", N_("Subject")),
                 "body": ("BODY", N_("Body"))}


def _page_number(request: Request) -> int:
    try:
        return max(0, min(int(request.query_params.get("page", "0")), 10_000_000))
    except ValueError:
        return 0


def search_uids(store, folder, field: str, text: str) -> list[int]:
    """Blocking: the uids matching, newest first, as IMAP's UID SEARCH finds them."""
    mb = Mailbox.load(store, folder, readonly=True)
    key = SearchKey(SEARCH_FIELDS.get(field, SEARCH_FIELDS["text"])[0], (text,))
    return [mb.uids[i] for i in reversed(run_search(store, mb, key))]


async def owned_message(web: WebContext, user, message_id: int):
    """(message, folder) when the message is in one of the user's folders, else None."""
    m = await web.run(web.store.get_message, message_id)
    f = m and await web.run(web.store.get_folder_by_id, m.folder_id)
    if m is None or f is None or f.user_id != user.id:
        return None
    return m, f


def reading_routes(site: Site, web: WebContext) -> list[Route]:
    @signed(web, site)
    async def folder(request: Request, user) -> Response:
        name = request.path_params.get("name", "INBOX")
        folders = await web.run(lambda: web.counts.folders(user.id))
        current = next((f for f in folders if f.name == name), None)
        if current is None:
            return no_folder(site, request, name)
        page = _page_number(request)
        q = request.query_params.get("q", "").strip()[:200]
        field = request.query_params.get("in", "text")
        if q:
            uids = await web.run(search_uids, web.store, current, field, q)
            total = len(uids)
            want = uids[page * PAGE:(page + 1) * PAGE]
            got_msgs = await web.run(web.store.get_messages, current.id, want)
            by_uid = {m.uid: m for m in got_msgs}
            msgs = [by_uid[u] for u in want if u in by_uid]
        else:
            total = current.messages
            msgs = await web.run(lambda: web.store.page_messages(current.id, limit=PAGE,
                                                                 offset=page * PAGE))
        query = f"&q={quote(q)}&in={quote(field)}" if q else ""
        # the seed's "my mail is not in my mailbox": say so where it is missed
        fwd = await web.run(web.store.get_forward, user.id) if name == "INBOX" else None
        return render(site, request, "folder.html", folders=folders, current=current,
                      messages=msgs, page=page, pages=max(1, -(-total // PAGE)), total=total,
                      q=q, field=field, search_fields=SEARCH_FIELDS, query=query, forward=fwd)

    @signed(web, site)
    async def message(request: Request, user) -> Response:
        owned = await owned_message(web, user, int(request.path_params["id"]))
        if owned is None:
            return no_message(site, request)
        m, f = owned
        try:
            raw = await web.run(web.store.blobs.read, m.blob_id)
        except BlobMissing:
            return error_page(site, request, 404, _("Message removed"),
                              _("This message was deleted meanwhile."))
        meta = m.meta if m.meta is not None else await web.run(summarize, raw)
        if "\\Seen" not in m.flags:
            await web.run(lambda: web.mailboxes.set_flags(f.id, [m.uid], frozenset({"\\Seen"}),
                                                          "add"))
        part_url = f"{site.root}message/{m.id}/part/"
        view = await web.run(lambda: show(raw, meta, part_url=part_url,
                                          load_images=request.query_params.get("images") == "1"))
        folders = await web.run(lambda: web.counts.folders(user.id))
        return render(site, request, "message.html", m=m, view=view, folders=folders, current=f,
                      part_url=part_url)

    @signed(web, site)
    async def part(request: Request, user) -> Response:
        """One part, transfer encoding undone: a download (attachment,
        nosniff, its RFC 2231/2047 name kept), or an inline raster image."""
        owned = await owned_message(web, user, int(request.path_params["id"]))
        if owned is None:
            return no_message(site, request)
        m, _f = owned
        try:
            raw = await web.run(web.store.blobs.read, m.blob_id)
        except BlobMissing:
            return no_message(site, request)
        meta = m.meta if m.meta is not None else await web.run(summarize, raw)
        try:
            path = part_path(meta, request.path_params["part"])
        except ValueError:
            return no_message(site, request)
        node = find_part(meta, path) if path else meta["body"]
        if node is None or node.get("parts"):
            return no_message(site, request)
        data = await web.run(decoded_body, raw, meta, path) or b""
        ctype = f"{node['type']}/{node['subtype']}"
        name = part_filename(node) or (_("attachment") + "-" + request.path_params["part"])
        name = "".join(c for c in name if c >= " " and c not in '"\\/').strip() or "attachment"
        inline = ctype in INLINE_IMAGES and request.query_params.get("download") != "1"
        disposition = "inline" if inline else "attachment"
        ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
        headers = {"Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
                                          f"filename*=UTF-8''{quote(name, safe='')}",
                   "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
        safe_type = node["type"] in ("image", "audio", "video", "application") and not any(
            x in ctype for x in ("svg", "xml", "html", "javascript"))
        media = ctype if inline or safe_type else "application/octet-stream"
        return Response(data, media_type=media, headers=headers)

    return [Route(site.root, folder),
            Route(site.root + "folder/{name:path}", folder),
            Route(site.root + "message/{id:int}", message),
            Route(site.root + "message/{id:int}/part/{part}", part)]
