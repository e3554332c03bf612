"""Organising: several messages at once (mark read/unread, flag, move,
delete to Trash; in Trash, delete for good), emptying Trash or Junk, and
creating, renaming and deleting folders; all through services.mailboxes,
the same code as IMAP's STORE, MOVE, EXPUNGE, CREATE, RENAME and DELETE."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services.mailboxes import MailboxError
from ..i18n import N_, _
from ..site import (Site, WebContext, local_path, redirect, render)
from .common import signed

TRASH = "Trash"
JUNK = "Junk"
# "Spam" and "Not spam" are moves into and out of Junk: the move trains the
# intelligent score for this user (services.spamlearn), as an IMAP MOVE does.
_SPAM_MOVES = {"spam": JUNK, "notspam": "INBOX"}
PROTECTED = ("INBOX", "Sent", "Drafts", "Junk", "Trash")
NOTICES = {"read": N_("Marked as read."), "unread": N_("Marked as unread."),
           "flag": N_("Flagged."), "unflag": N_("Flag removed."),
           "moved": N_("Moved to {n}."), "deleted": N_("Moved to Trash."),
           "purged": N_("Deleted for good."), "emptied": N_("The folder is empty now."),
           "created": N_("Folder created."), "renamed": N_("Folder renamed."),
           "removed": N_("Folder deleted."), "none": N_("Select at least one message first.")}
_FLAGS = {"read": ("\\Seen", "add"), "unread": ("\\Seen", "remove"),
          "flag": ("\\Flagged", "add"), "unflag": ("\\Flagged", "remove")}


def _mailbox_error(e: MailboxError) -> str:
    return {"ALREADYEXISTS": _("A folder with that name exists already."),
            "NONEXISTENT": _("There is no such folder."),
            "TRYCREATE": _("There is no such folder."),
            "OVERQUOTA": _("The mailbox is over its quota."),
            "CANNOT": _("That name cannot be used for a folder.")}.get(e.reason, e.text)


def _with_notice(url: str, key: str, n: str = "") -> str:
    sep = "&" if "?" in url else "?"
    url = "&".join(p for p in url.split("&") if not p.startswith(("done=", "n="))) \
        if "?" in url else url
    return f"{url}{sep}done={key}" + (f"&n={quote(n)}" if n else "")


def organising_routes(site: Site, web: WebContext) -> list[Route]:
    @signed(web, site, post=True)
    async def act(request: Request, user, form) -> Response:
        action = str(form.get("action", ""))
        folder = await web.run(web.store.get_folder, user.id, str(form.get("folder", "")))
        back = local_path(str(form.get("back", "")), site.root)
        if not back.startswith(site.root):
            back = site.root
        if folder is None:
            return redirect(site.root)
        ids = []
        for v in form.getlist("id")[:1000]:
            try:
                ids.append(int(v))
            except ValueError:
                pass
        msgs = [m for m in await web.run(lambda: [web.store.get_message(i) for i in ids])
                if m is not None and m.folder_id == folder.id]
        uids = [m.uid for m in msgs]
        folder_url = f"{site.root}folder/{quote(folder.name, safe='')}"
        if not uids:
            return redirect(_with_notice(back, "none"))
        if action in _FLAGS:
            flag, mode = _FLAGS[action]
            await web.run(web.mailboxes.set_flags, folder.id, uids, frozenset({flag}), mode)
            return redirect(_with_notice(back, action))
        if action in _SPAM_MOVES or action == "move" or action == "delete" and folder.name != TRASH:
            dest = (TRASH if action == "delete" else _SPAM_MOVES.get(action)
                    or str(form.get("dest", "")))
            try:
                await web.run(lambda: web.mailboxes.move(user.id, folder.id, uids, dest))
            except MailboxError as e:
                return render(site, request, "error.html", 200, title=_("Not moved"),
                              text=_mailbox_error(e))
            if action == "delete":
                return redirect(_with_notice(folder_url if "/message/" in back else back,
                                             "deleted"))
            return redirect(_with_notice(folder_url if "/message/" in back else back, "moved",
                                         site.env.filters["folder"](dest)))
        if action == "delete":      # in Trash: for good
            await web.run(web.store.expunge, folder.id, uids)
            return redirect(_with_notice(folder_url, "purged"))
        return redirect(back)

    @signed(web, site)
    async def folders_page(request: Request, user) -> Response:
        folders = await web.run(lambda: web.counts.folders(user.id))
        return render(site, request, "folders.html", folders=folders, current=None,
                      protected=PROTECTED, error=None)

    @signed(web, site, post=True)
    async def folder_change(request: Request, user, form) -> Response:
        what = request.path_params["what"]
        name = str(form.get("folder", "")).strip()
        try:
            if what == "create":
                await web.run(lambda: web.mailboxes.create(user.id, str(form.get("name", "")).strip()))
                return redirect(site.root + "folders?done=created")
            if what == "empty":
                f = await web.run(web.store.get_folder, user.id, name)
                if f is not None and f.name in (TRASH, JUNK):
                    await web.run(web.mailboxes.empty, f.id)
                return redirect(site.root + "folder/" + quote(name, safe="") + "?done=emptied")
            if name in PROTECTED:
                raise MailboxError("special folder", "CANNOT")
            if what == "rename":
                new = str(form.get("name", "")).strip()
                await web.run(lambda: web.mailboxes.rename(user.id, name, new))
                return redirect(site.root + "folders?done=renamed")
            if what == "delete":
                await web.run(lambda: web.mailboxes.delete(user.id, name))
                return redirect(site.root + "folders?done=removed")
        except MailboxError as e:
            folders = await web.run(lambda: web.counts.folders(user.id))
            return render(site, request, "folders.html", 200, folders=folders, current=None,
                          protected=PROTECTED, flashes=[("error", _mailbox_error(e))])
        return redirect(site.root + "folders")

    return [Route(site.root + "act", act, methods=["POST"]),
            Route(site.root + "folders", folders_page, methods=["GET"]),
            Route(site.root + "folders/{what:str}", folder_change, methods=["POST"])]
