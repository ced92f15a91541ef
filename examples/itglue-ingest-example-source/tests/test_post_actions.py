"""The post-actions: a landed ticket's id goes to ``<export>.done``, a ticket that cannot
land goes to ``<export>.failed`` with the reason, and the run reports why."""

import json


def test_landed_tickets_are_done_and_bad_ones_failed_with_a_reason(run_once, tmp_path):
    export = tmp_path / "tickets.jsonl"
    lines = [
        json.dumps({"id": "T-1", "subject": "Printer jams"}),
        "{not json",
        json.dumps({"id": "T-3", "subject": "Gone", "attachments": ["nope.pdf"]}),
    ]
    export.write_text("\n".join(lines) + "\n")
    tickets = {"type": "jsonl_tickets", "path": export, "organization": "Acme"}

    landed = run_once(tickets, organizations=["Acme"])

    assert [d.name for d in landed.documents] == ["Printer jams"]
    assert landed.failures["line-2"].startswith("tickets.jsonl line 2: not a ticket")
    assert "nope.pdf" in landed.failures["T-3"]
    assert export.with_name("tickets.jsonl.done").read_text().split() == ["T-1"]
    failed = export.with_name("tickets.jsonl.failed").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in failed) == ["T-3", "line-2"]
