"""A long-lived ack connection sees a folder as it was at its last command.

IMAP tells a session about new mail only in the answer to its next command (RFC 3501
§7.3.1), and Dovecot applies a UID STORE only to the UIDs the session knew before that
command: a STORE on a mail that arrived since changes nothing, and the ``EXISTS`` comes
back with the STORE's answer. The daemon's ack connection stays selected between acks,
so a mail delivered right after it arrived hit exactly this; the follow-up FETCH then
found the mail (without the flags) and the post-action was reported done.
"""

from __future__ import annotations

from plugins.imap.connection import Mailbox
from plugins.imap.options import ImapOptions
from tests.imap.imap_helpers import make_message


def test_flags_reach_a_mail_that_arrived_after_the_folder_was_selected(mailbox) -> None:
    options = ImapOptions(host="127.0.0.1", username=mailbox.user)
    with mailbox.client() as client:
        box = Mailbox(client, options)
        box.select("INBOX")
        uid = mailbox.append(make_message("arrived later"))  # through another connection
        flags = box.add_flags_reporting([uid], [b"\\Seen", "$Ingested"])
        assert {b"\\Seen", b"$Ingested"} <= flags[uid]
    assert mailbox.flags_by_subject() == {"arrived later": {"\\Seen", "$Ingested"}}


def test_a_mail_that_is_gone_is_still_reported_missing(mailbox) -> None:
    options = ImapOptions(host="127.0.0.1", username=mailbox.user)
    uid = mailbox.append(make_message("short-lived"))
    with mailbox.client() as client:
        box = Mailbox(client, options)
        box.select("INBOX")
        box.delete([uid])
        assert box.add_flags_reporting([uid], [b"\\Seen"]) == {}
