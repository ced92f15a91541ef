"""Peak memory growth of a 100 MB attachment upload through the streamed body.

The emulator runs in this process; each measurement runs in a fresh subprocess that
reports the growth of its peak RSS (``VmHWM``) over the point just before the
measured work, so nothing else pollutes the figure:

* ``read``: baseline, reading the file into memory (what any non-streaming upload
  costs at the very least);
* ``naive``: building the JSON body in memory the usual way (read, base64, json.dumps);
* ``streamed``: ``ITGlueClient.upload_attachment(path=...)`` (target: < 32 MB).

The uploaded bytes are checked against the file (sha256).

    .venv/bin/python bench/bench_client_upload_memory.py [--mb 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from itglue_emulator import run_emulator

CHILD = r"""
import base64, json, resource, sys
mode, path = sys.argv[1], sys.argv[2]
def peak_kb():
    # VmHWM: peak RSS of this process image (ru_maxrss would inherit the parent's peak
    # across fork+exec on Linux)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "streamed":
    from core_client import ITGlueClient
    base, key, ca, state, doc_id = sys.argv[3:8]
    client = ITGlueClient.from_instance("bench", state, base_url=base, api_key=key, ca_bundle=ca,
                                        read_timeout=300)
    client.get_json("/organizations", {"page[size]": 1})  # warm up: TLS, pools, imports
    before = peak_kb()
    att = client.upload_attachment("documents", doc_id, path=path)
    after = peak_kb()
    client.close()
    print(json.dumps({"growth_kb": after - before, "attachment": att.id}))
elif mode == "read":
    before = peak_kb()
    data = open(path, "rb").read()
    after = peak_kb()
    print(json.dumps({"growth_kb": after - before}))
else:
    before = peak_kb()
    data = open(path, "rb").read()
    body = json.dumps({"data": {"type": "attachments", "attributes": {"attachment": {
        "content": base64.b64encode(data).decode(), "file_name": "x"}}}}).encode()
    after = peak_kb()
    print(json.dumps({"growth_kb": after - before}))
"""


def child(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    size = args.mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as fh:
            for _ in range(args.mb):
                fh.write(os.urandom(1024 * 1024))
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1024 * 1024):
                sha.update(block)
        digest = sha.hexdigest()
        read = child("read", str(path))
        naive = child("naive", str(path))
        body_limit = size * 4 // 3 + 1024 * 1024
        with run_emulator(max_body_bytes=body_limit) as emu:
            from core_client import ITGlueClient

            with ITGlueClient.from_instance(
                "setup",
                base_url=emu.base_url,
                api_key=emu.api_key,
                ca_bundle=emu.ca_file,
                state_dir=Path(tmp) / "s0",
            ) as c:
                org = c.create_organization("Bench")
                doc = c.create_document(org.id, "Big upload")
            streamed = child(
                "streamed",
                str(path),
                emu.base_url,
                emu.api_key,
                str(emu.ca_file),
                str(Path(tmp) / "s1"),
                doc.id,
            )
            uploaded = emu.attachment_content(str(streamed["attachment"]))
        ok = hashlib.sha256(uploaded).hexdigest() == digest and len(uploaded) == size
    mb = 1024.0
    print(f"file: {args.mb} MB; peak RSS growth of the process:")
    print(f"  read into memory (baseline): {int(read['growth_kb']) / mb:8.1f} MB")  # type: ignore[call-overload]
    print(f"  naive JSON body in memory:   {int(naive['growth_kb']) / mb:8.1f} MB")  # type: ignore[call-overload]
    growth = int(streamed["growth_kb"]) / mb  # type: ignore[call-overload]
    base = int(read["growth_kb"]) / mb  # type: ignore[call-overload]
    print(
        f"  streamed upload (client):    {growth:8.1f} MB  "
        f"({growth / base:.1%} of the baseline; target < 32 MB)"
    )
    print(f"uploaded content identical: {ok}")


if __name__ == "__main__":
    main()
