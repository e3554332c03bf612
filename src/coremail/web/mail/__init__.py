"""The webmail at /coremail/: its pages, one module per area (reading,
organising, writing, settings), over services/ and the store's interface."""
from __future__ import annotations

from pathlib import Path

from ..i18n import N_
from ..site import Site

FOLDER_NAMES = {"INBOX": N_("Inbox"), "Sent": N_("Sent"), "Drafts": N_("Drafts"),
                "Junk": N_("Junk"), "Trash": N_("Trash")}
NOTICES = {"sent": N_("Your message was sent.")}


def webmail_site() -> Site:
    site = Site("/coremail/", Path(__file__).resolve().parent / "templates", dict(NOTICES))
    from ..i18n import gettext
    site.env.filters["folder"] = lambda n: gettext(FOLDER_NAMES[n]) if n in FOLDER_NAMES else n
    return site
