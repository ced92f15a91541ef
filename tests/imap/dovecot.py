"""A private Dovecot IMAP server on 127.0.0.1 for the IMAP tests and the bench.

Why a Python module rather than a shell script: the tests need to add users, kick
sessions and change UIDVALIDITY while the server runs, and a small class that owns the
configuration directory does that without re-parsing script output.

The server runs from its own configuration under a ``mkdtemp`` directory (mode 0755:
as root, Dovecot's ``dovecot``/``nobody`` users must traverse it, and pytest's
``tmp_path`` is 0700). It listens on two free loopback ports: plain IMAP (with
STARTTLS) and IMAPS, with a certificate issued by a throw-away ``trustme`` CA whose
PEM is ``ca_file``. Each test takes its own user (a fresh, empty mailbox) from a pool
written at start. ``XOAUTH2`` is enabled:
Dovecot verifies the bearer token as the user's password, which is all a test of the
client side of OAuth2 needs.

Teardown sends SIGTERM to the master and does not wait for ``dovecot stop`` (which
always takes about 3 s).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import trustme

from tests.waiting import wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
POOL = 400  # test users written into the passwd-file at start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Dovecot:
    """One running private Dovecot; use :meth:`start` / :meth:`stop` or ``with``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="itglue-dovecot-"))
        os.chmod(self.dir, 0o755)  # noqa: S103 - Dovecot's users must traverse it
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.ssl_port = _free_port()
        self.conf = self.dir / "dovecot.conf"
        self.users_file = self.dir / "users"
        self.ca_file = str(self.dir / "ca.pem")
        self._salt = os.urandom(6).hex()
        self._counter = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Dovecot:
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(self.ca_file)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(self.dir / "cert.pem"), append=True)
        os.chmod(self.dir / "key.pem", 0o644)  # read by the login processes (dovenull)
        self.users_file.write_text(
            "".join(
                f"user{i}:{{PLAIN}}pw-{i}-{self._salt}::::::nodelay=yes\n"
                for i in range(1, POOL + 1)
            )
        )
        os.chmod(self.users_file, 0o644)
        self.conf.write_text(self._config())
        with open(self.dir / "dovecot.stdout", "wb") as out:
            subprocess.run(
                [DOVECOT, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=30,
            )
        try:
            wait_for(
                lambda: _port_open(self.port) and _port_open(self.ssl_port),
                timeout=15,
                interval=0.05,
                message="dovecot's ports",
            )
        except AssertionError:
            raise RuntimeError(f"dovecot did not come up:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        pid_file = self.dir / "run" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        parts = []
        for name in ("dovecot.stdout", "dovecot.log"):
            with contextlib.suppress(OSError):
                parts.append((self.dir / name).read_text(errors="replace"))
        return "\n".join(parts)

    # -- users -------------------------------------------------------------------

    def add_user(self) -> tuple[str, str]:
        """A user nobody used yet (a fresh, empty mailbox): ``(name, password)``.

        Users come from a pool written before the server started: Dovecot's passwd-file
        reload is keyed on the file's mtime and misses changes within the same second.
        """
        i = next(self._counter)
        if i > POOL:
            raise RuntimeError(f"more than {POOL} IMAP test users in one session")
        return f"user{i}", f"pw-{i}-{self._salt}"

    # -- admin -------------------------------------------------------------------

    def doveadm(self, *args: str, input: bytes | None = None) -> str:
        proc = subprocess.run(
            [DOVEADM, "-c", str(self.conf), *args],
            input=input,
            capture_output=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace')}"
            )
        return proc.stdout.decode(errors="replace")

    def save(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message without IMAP (``doveadm save``)."""
        self.doveadm("save", "-u", user, "-m", folder, input=raw)

    def set_uidvalidity(self, user: str, folder: str, value: int) -> None:
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), folder)

    def kick(self, user: str) -> None:
        """Disconnect every IMAP session of ``user`` (the server drops the connection)."""
        self.doveadm("kick", user)

    def imap_pids(self, user: str) -> list[int]:
        """Pids of the ``imap`` processes serving ``user`` (from the process titles)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if cmd.startswith("dovecot/imap ") and f"[{user} " in cmd:
                    pids.append(int(proc.name))
        return pids

    def status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        out = self.doveadm(
            "-f", "flow", "mailbox", "status", "-u", user, "messages uidvalidity uidnext", folder
        )
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        return {k: int(v) for k, v in fields.items()}

    # -- configuration -----------------------------------------------------------

    def _config(self) -> str:
        d = self.dir
        if os.geteuid() == 0:
            priv = (
                "default_internal_user = dovecot\n"
                "default_login_user = dovenull\n"
                "service stats {\n  unix_listener stats-writer {\n    mode = 0666\n  }\n}\n"
            )
            uidargs = "uid=nobody gid=nogroup"
            shutil.chown(d / "mail", "nobody", "nogroup")
        else:
            import grp
            import pwd

            me = pwd.getpwuid(os.getuid()).pw_name
            myg = grp.getgrgid(os.getgid()).gr_name
            priv = (
                f"default_internal_user = {me}\n"
                f"default_internal_group = {myg}\n"
                f"default_login_user = {me}\n"
                "service anvil {\n  chroot =\n}\n"
                "service imap-login {\n  chroot =\n}\n"
            )
            uidargs = ""
        return f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
{priv}
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
auth_cache_size = 0
verbose_proctitle = yes
mail_fsync = never
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = 50
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = {uidargs} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}
"""
