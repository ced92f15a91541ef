"""A test CA (trustme) and the server certificate for 127.0.0.1/localhost.

By default the CA is thrown away: its PEM goes to a private temporary directory so
clients can point ``verify=`` / ``ca_bundle`` at it, and ``close()`` removes it. Given a
``directory``, the CA is kept there (``ca.pem``, and ``ca-key.pem`` readable by the owner
only) and reused by the next emulator started with the same directory, so that a
configuration trusting it (the demo's) keeps working.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


class TestCertificateAuthority:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path | None = None) -> None:
        self._keep = directory is not None
        if directory is None:
            self._dir = Path(tempfile.mkdtemp(prefix="itglue-emulator-ca-"))
        else:
            self._dir = directory
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ca_file = self._dir / CA_FILE
        key_file = self._dir / CA_KEY_FILE
        if self._keep and self.ca_file.exists() and key_file.exists():
            self._ca = trustme.CA.from_pem(self.ca_file.read_bytes(), key_file.read_bytes())
        else:
            self._ca = trustme.CA(organization_name="itglue-ingest emulator")
            self._ca.cert_pem.write_to_path(str(self.ca_file))
            if self._keep:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(self._ca.private_key_pem.bytes())
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def close(self) -> None:
        if not self._keep:
            shutil.rmtree(self._dir, ignore_errors=True)
