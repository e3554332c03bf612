"""Writing: compose, reply, reply-all, forward and drafts. Sending goes
through services.send (the same limits, sender policy, quota, queue and
verdict words as port 587; the copy lands in Sent); drafts are saved to
Drafts through services.mailboxes and resumed. A bad address is shown next
to its field; on any refusal the text stays on the page and the message,
with its attachments, is kept as a draft, so nothing typed is lost."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...mail.mime import attachments, decoded_body, find_part, part_filename, summarize
from ...services.mailboxes import MailboxError, NewMessage
from ...store.interfaces import BlobMissing, StoreError
from ..i18n import N_, _
from ..render import part_path, show
from ..site import Site, WebContext, redirect, render
from ..templating import full_date, size
from .common import no_message, signed
from .drafting import FIELDS, bare, build, check_recipients, headers_of, start_from
from .reading import owned_message

NOTICES = {"sent": N_("Your message was sent."), "saved": N_("Draft saved.")}
TEXT_FIELDS = (*FIELDS, "subject", "body", "in_reply_to", "references")


async def _load(web: WebContext, user, message_id: int):
    """(message, raw, meta) of one of the user's messages, or None."""
    owned = await owned_message(web, user, message_id)
    if owned is None:
        return None
    m = owned[0]
    try:
        raw = await web.run(web.store.blobs.read, m.blob_id)
    except BlobMissing:
        return None
    return m, raw, (m.meta if m.meta is not None else await web.run(summarize, raw))


def _int(v) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def writing_routes(site: Site, web: WebContext) -> list[Route]:
    def page(request: Request, values: dict, *, errors=None, carry=None, status: int = 200,
             notice: str | None = None, kind: str = "error") -> Response:
        """carry: (message id, its attachment list) whose attachments go along."""
        cid, carried = carry or (None, [])
        return render(site, request, "compose.html", status, values=values, errors=errors or {},
                      carry=cid, carried=carried,
                      keep=set(values.get("keep", [a["part"] for a in carried])),
                      flashes=[(kind, notice)] if notice else [],
                      limit=size(int(web.ctx.settings.limits.max_message_size)))

    async def signature(user) -> str:
        sig = await web.run(web.store.get_setting, user.address, "signature")
        return "\n\n-- \n" + sig if sig else ""

    @signed(web, site)
    async def compose_page(request: Request, user) -> Response:
        q = request.query_params
        values: dict = {k: q.get(k, "") for k in ("to", "subject")}
        values["body"] = await signature(user)
        carry = None
        for mode in ("reply", "replyall", "forward", "draft"):
            mid = _int(q.get(mode))
            if mid is None:
                continue
            got = await _load(web, user, mid)
            if got is None:
                return no_message(site, request)
            m, raw, meta = got
            view = await web.run(lambda: show(raw, meta))
            if mode == "draft":
                h = headers_of(raw)
                values = {k: str(h.get(k.replace("_", "-"), "") or "") for k in TEXT_FIELDS}
                values["body"] = view.text or ""
                values["draft"] = str(m.id)
                carry = (m.id, attachments(meta))
            else:
                values = start_from(raw, view, mode, user.address,
                                    full_date(view.date or m.internaldate))
                values["body"] = (await signature(user)) + values["body"]
                if mode == "forward":
                    carry = (m.id, attachments(meta))
                else:
                    values["replied"] = str(m.id)
            break
        return page(request, values, carry=carry)

    async def carried_files(user, carry_id: int | None, keep: list[str]):
        if carry_id is None:
            return None, []
        got = await _load(web, user, carry_id)
        if got is None:
            return None, []
        _m, raw, meta = got
        files = []
        for part in keep:
            try:
                path = part_path(meta, part)
            except ValueError:
                continue
            node = find_part(meta, path) if path else meta["body"]
            if node is None or node.get("parts"):
                continue
            files.append((part_filename(node) or "attachment", f"{node['type']}/{node['subtype']}",
                          decoded_body(raw, meta, path) or b""))
        return (carry_id, attachments(meta)), files

    async def save_draft(user, raw: bytes, old: int | None) -> int | None:
        drafts = await web.run(web.store.get_folder, user.id, "Drafts")
        if drafts is None:
            drafts = await web.run(lambda: web.mailboxes.create(user.id, "Drafts", "\\Drafts"))
        [uid] = await web.mailboxes.append(user, drafts, [NewMessage(
            raw, frozenset({"\\Draft", "\\Seen"}))])
        [m] = await web.run(web.store.get_messages, drafts.id, [uid])
        if old is not None:
            await forget_draft(user, old)
        return m.id

    async def forget_draft(user, draft_id: int | None) -> None:
        owned = draft_id is not None and await owned_message(web, user, draft_id)
        if owned and owned[1].name == "Drafts":
            await web.run(web.store.delete_messages, user.id, [draft_id])

    @signed(web, site, post=True)
    async def send(request: Request, user, form) -> Response:
        values: dict = {k: str(form.get(k, "")) for k in TEXT_FIELDS}
        for k in ("draft", "replied"):
            values[k] = str(form.get(k, ""))
        values["keep"] = [str(p) for p in form.getlist("keep")]
        draft_id = _int(values["draft"])
        carry, files = await carried_files(user, _int(form.get("carry")), values["keep"])
        for up in form.getlist("attach"):
            if getattr(up, "filename", None):
                files.append((up.filename, up.content_type or "application/octet-stream",
                              await up.read()))
        heads, errors = check_recipients(values)
        saving = form.get("action") == "save"
        limit = int(web.ctx.settings.limits.max_message_size)

        async def keep_as_draft(notice: str | None, status: int = 200,
                                kind: str = "error") -> Response:
            """Show the page again; the message and its attachments kept in Drafts."""
            raw = build(user, values, heads, files, with_bcc=True)
            new_carry = carry
            if limit <= 0 or len(raw) <= limit:
                try:
                    new_id = await save_draft(user, raw, draft_id)
                except (MailboxError, StoreError):
                    new_id = None
                if new_id is not None:
                    values["draft"] = str(new_id)
                    got = await _load(web, user, new_id)
                    new_carry = (new_id, attachments(got[2])) if got else None
                    values["keep"] = [a["part"] for a in new_carry[1]] if new_carry else []
            return page(request, values, errors=errors, carry=new_carry, status=status,
                        notice=notice, kind=kind)

        rcpts = [bare(e) for f in FIELDS for e in heads[f]]
        if saving:
            return await keep_as_draft(_("Draft saved.") if not errors else None, kind="ok")
        if not rcpts and "to" not in errors:
            errors["to"] = _("Add at least one recipient.")
        if errors:
            return await keep_as_draft(_("Not sent: check the addresses marked below."))
        raw = build(user, values, heads, files, with_bcc=False)
        if limit and len(raw) > limit:
            return page(request, values, errors=errors, carry=carry, notice=_(
                "Not sent: the message is {size}, more than this server accepts ({limit}). "
                "Remove an attachment and try again.").format(size=size(len(raw)),
                                                               limit=size(limit)))
        ip = request.client.host if request.client else "127.0.0.1"
        try:
            result = await web.sender.send(user, ip=ip, sender=user.address, recipients=rcpts,
                                           content=raw)
        except StoreError as e:
            return await keep_as_draft(_(
                "The message could not be sent: {reason}. Your text is still here; try again, "
                "or ask an administrator to run “coremail doctor”.").format(reason=e.text), 503)
        if not result.ok:
            for addr, v in result.refused.items():
                field = next((f for f in FIELDS if any(bare(e) == addr for e in heads[f])), "to")
                errors[field] = f"{addr}: {v.text}"
            return await keep_as_draft(
                _("Not sent: check the addresses marked below.") if result.refused
                else _("Not sent: {reason}").format(reason=result.verdict.text))
        web.ctx.log.info("web.sent", user=user.address, qid=result.qid, rcpts=len(rcpts))
        await forget_draft(user, draft_id)
        replied = _int(values["replied"])
        owned = replied is not None and await owned_message(web, user, replied)
        if owned:
            await web.run(web.mailboxes.set_flags, owned[1].id, [owned[0].uid],
                          frozenset({"\\Answered"}), "add")
        return redirect(site.root + "?done=sent")

    return [Route(site.root + "compose", compose_page, methods=["GET"]),
            Route(site.root + "compose", send, methods=["POST"])]
