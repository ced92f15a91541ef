"""Peak memory growth of a 100 MB attachment download through the streamed path.

The emulator runs in this process; each measurement runs in a fresh subprocess that
reports the growth of its peak RSS (``VmHWM``) over the point just before the
measured work, so nothing else pollutes the figure:

* ``bytes``: baseline, ``download_attachment`` (the whole file in memory, as before);
* ``streamed``: ``download_attachment_to(..., path)`` (target: < 32 MB).

Both runs download the same attachment; the written file is checked (sha256, size).

    .venv/bin/python bench/bench_client_download_memory.py [--mb 100]
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
import hashlib, json, resource, sys
mode, base, key, ca, state, doc_id, att_id, dest = sys.argv[1:9]
def peak_kb():
    # VmHWM: peak RSS of this process image (ru_maxrss would inherit the parent's peak
    # across fork+exec on Linux)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from core_client import ITGlueClient
client = ITGlueClient.from_instance("bench", state, base_url=base, api_key=key, ca_bundle=ca,
                                    read_timeout=300)
att = client.get_attachment("documents", doc_id, att_id)  # warm up: TLS, pools, imports
before = peak_kb()
if mode == "streamed":
    got = client.download_attachment_to("documents", doc_id, att, dest)
    digest, size = got.sha256, got.size
else:
    data = client.download_attachment("documents", doc_id, att)
    digest, size = hashlib.sha256(data).hexdigest(), len(data)
after = peak_kb()
client.close()
print(json.dumps({"growth_kb": after - before, "sha256": digest, "size": size}))
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
        sha = hashlib.sha256()
        with open(path, "wb") as fh:
            for _ in range(args.mb):
                block = os.urandom(1024 * 1024)
                sha.update(block)
                fh.write(block)
        digest = sha.hexdigest()
        with run_emulator(max_body_bytes=size * 4 // 3 + 1024 * 1024) as emu:
            from core_client import ITGlueClient

            with ITGlueClient.from_instance(
                "setup",
                base_url=emu.base_url,
                api_key=emu.api_key,
                ca_bundle=emu.ca_file,
                state_dir=Path(tmp) / "s0",
                read_timeout=300,
            ) as c:
                org = c.create_organization("Bench")
                doc = c.create_document(org.id, "Big download")
                att = c.upload_attachment("documents", doc.id, path=path)
            path.unlink()  # the download writes its own copy; keep the disk use to one file
            common = [emu.base_url, emu.api_key, str(emu.ca_file)]
            dest = str(Path(tmp) / "downloaded.bin")
            in_memory = child("bytes", *common, str(Path(tmp) / "s1"), doc.id, att.id, dest)
            streamed = child("streamed", *common, str(Path(tmp) / "s2"), doc.id, att.id, dest)
        on_disk = Path(dest).stat().st_size
    ok = all(r["sha256"] == digest and r["size"] == size for r in (in_memory, streamed))
    mb = 1024.0
    base = int(in_memory["growth_kb"]) / mb  # type: ignore[call-overload]
    growth = int(streamed["growth_kb"]) / mb  # type: ignore[call-overload]
    print(f"file: {args.mb} MB; peak RSS growth of the process:")
    print(f"  download into memory (baseline): {base:8.1f} MB")
    print(
        f"  streamed download to a file:     {growth:8.1f} MB  "
        f"({growth / max(base, 0.1):.1%} of the baseline; target < 32 MB)"
    )
    print(f"downloaded content identical (sha256, size): {ok and on_disk == size}")


if __name__ == "__main__":
    main()
