"""The daemon reading a real Dovecot mailbox is SIGKILLed 20 times (issue 10).

The real CLI ``run`` (IDLE on) delivers into the emulator with lost answers and 5xx on,
while mail keeps arriving (``doveadm save``). Each mail's post-action flags it and moves
it to ``Processed``. At the end every mail is one document with its body section and
its attachments, byte-identical, and sits in ``Processed`` exactly once, flagged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itglue_emulator import run_emulator
from tests.crash_loop import CrashLoop, ledger_counts, write_config
from tests.imap.conftest import PASSWORD_ENV, Mailbox
from tests.imap.imap_helpers import make_message

KILLS = 20
PER_ROUND = 4  # mails saved in each round: half before the daemon starts, half while it runs
MAILS = KILLS * PER_ROUND


@pytest.fixture
def emulator() -> Iterator[Any]:
    with run_emulator(api_key="crash-key", seed="demo") as emu:
        yield emu


def source(box: Mailbox) -> str:
    return f"""
[[sources]]
name = "mail"
type = "imap"
organization = "Acme Corp"
host = "{box.server.host}"
port = {box.server.ssl_port}
security = "ssl"
ca_file = "{box.server.ca_file}"
username = "{box.user}"
password_env = "{PASSWORD_ENV}"
idle = true
poll_interval = 1.0
reconnect_max = 1.0
on_success = ["flag", "move"]
success_folder = "Processed"
"""


def attachments(i: int) -> list[tuple[str, bytes, str]]:
    """One or two attachments per mail, each with its own bytes."""
    files = [
        (f"mail-{i:03}.pdf", b"%PDF-1.4\n" + f"invoice {i}\n".encode() * (i + 5), "application/pdf")
    ]
    if i % 2:
        files.append((f"mail-{i:03}-notes.txt", f"notes of mail {i}\n".encode() * 3, "text/plain"))
    return files


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_20_sigkills_of_the_imap_daemon(tmp_path: Path, emulator: Any, mailbox: Mailbox) -> None:
    mails = {
        f"Crash mail {i:03}": (
            f"<crash-{i:03}@test.example>",
            attachments(i),
        )
        for i in range(MAILS)
    }
    pending = list(mails)

    def save(n: int) -> None:
        for subject in pending[:n]:
            msgid, files = mails[subject]
            raw = make_message(
                subject, html=f"<p>Body of {subject}</p>", attachments=files, message_id=msgid
            )
            mailbox.server.save(mailbox.user, raw)
        del pending[:n]

    loop = CrashLoop(
        write_config(tmp_path, emulator, source(mailbox)),
        emulator,
        lambda: len(emulator.state()["records"]["documents"]),
    )
    loop.crash(
        KILLS,
        before=lambda: save(PER_ROUND // 2),  # a backlog for the start-up sync
        during=lambda: save(PER_ROUND - PER_ROUND // 2),  # mail IDLE reports
    )
    # the post-action runs before the ledger says done: done means moved and flagged
    loop.finish(lambda: ledger_counts(tmp_path) == {"mail": {"done": MAILS}})

    assert loop.hits == KILLS, f"only {loop.hits} kills hit a running daemon"
    assert loop.deleted == [], "a daemon held a deleted WAL"

    state = emulator.state()["records"]
    docs = Counter(d["name"] for d in state["documents"])
    assert set(docs) == set(mails), "a mail was lost"
    assert [n for n, c in docs.items() if c > 1] == [], "a mail was delivered twice"
    doc_names = {d["id"]: d["name"] for d in state["documents"]}
    landed: dict[str, dict[str, bytes]] = {}
    for a in state["attachments"]:
        files = landed.setdefault(doc_names[str(a["resource-id"])], {})
        assert a["file-name"] not in files, f"{a['file-name']} was uploaded twice"
        files[a["file-name"]] = emulator.attachment_content(a["id"])
    assert landed == {s: {n: data for n, data, _ in files} for s, (_, files) in mails.items()}
    sections = Counter(doc_names[str(s["document-id"])] for s in state["document_sections"])
    assert sections == Counter(set(mails)), "a body section is missing or doubled"
    assert ledger_counts(tmp_path) == {"mail": {"done": MAILS}}

    processed = mailbox.messages("Processed")
    moved = Counter(m["subject"] for m in processed.values())
    stuck = {m["subject"]: m["flags"] for m in mailbox.messages("INBOX").values()}
    assert set(moved) | set(stuck) == set(mails)
    assert [s for s, c in moved.items() if c > 1] == [], "a mail was moved twice"
    assert all("\\Flagged" in m["flags"] for m in processed.values()), "a mail was not flagged"
    assert stuck == {}, "a mail was not moved"
