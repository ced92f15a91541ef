from pipeline.testing import LandedDocument as Doc


def test_tickets_land_in_it_glue_exactly_once(run_once, tmp_path):
    (tmp_path / "jam.pdf").write_bytes(b"%PDF-1.4 jam\n")
    (export := tmp_path / "tickets.jsonl").write_text(
        '{"id": "T-1", "subject": "Printer jams", "text": "<jams>", "attachments": ["jam.pdf"]}\n'
        '{"id": "T-2", "subject": "New laptop", "customer": "Globex"}\n'
    )
    tickets = {"type": "jsonl_tickets", "path": export, "organization": "Acme"}
    assert run_once(tickets, organizations=["Acme", "Globex"]).documents == [
        Doc("New laptop", "Globex", ["<p></p>"]),
        Doc("Printer jams", "Acme", ["<p>&lt;jams&gt;</p>"], {"jam.pdf": b"%PDF-1.4 jam\n"}),
    ]
    assert run_once(tickets).documents == []  # exactly once: a second run lands nothing
