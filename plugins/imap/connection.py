"""One authenticated IMAP connection (imapclient), with the checks users need to hear about.

* TLS: IMAPS or STARTTLS with certificate verification (``ca_file`` adds a private CA);
  plain text only for a loopback host with ``allow_insecure_loopback`` (checked by the
  options model).
* Authentication: LOGIN with a password, or XOAUTH2 with an access token (Microsoft 365,
  Gmail). A refused login, a failed certificate check, or a folder that does not exist is
  a :class:`pipeline.PermanentError` with a message a person can act on (the folder error
  lists the folders that exist); the password or token never appears in it.
* Every command is counted in :attr:`Mailbox.round_trips`, so the bench (and the tests)
  can show that a poll with nothing new costs a constant number of round trips.

Connection problems surface as :data:`CONNECTION_ERRORS`; the source reconnects with
:func:`itglue_common.backoff_delay`.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientAbortError, LoginError

from pipeline import PermanentError

from .options import ImapOptions

# a dropped or broken connection: reconnect and carry on from the checkpoint
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout, ssl.SSLError, ConnectionResetError
    IMAPClientAbortError,
    imaplib.IMAP4.abort,
    EOFError,
)
# the Message-ID header alone: how a mail is recognised without fetching its body
HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"


class Mailbox:
    """An authenticated connection; create with :meth:`open`, release with :meth:`close`."""

    def __init__(self, client: IMAPClient, options: ImapOptions) -> None:
        self.client = client
        self.options = options
        self.round_trips = 0
        self._folders: list[str] | None = None
        self.selected: str | None = None
        self.selected_validity: int | None = None
        self.in_idle = False
        self._lock = threading.Lock()

    # -- connecting ---------------------------------------------------------------

    @classmethod
    def open(cls, options: ImapOptions, credential: Callable[[], str]) -> Mailbox:
        """Connect, secure and log in. ``credential`` returns the password or token."""
        where = f"{options.host}:{options.effective_port}"
        try:
            context = ssl.create_default_context(
                cafile=str(options.ca_file) if options.ca_file else None
            )
        except (OSError, ssl.SSLError) as e:
            raise PermanentError(f"IMAP {where}: cannot load ca_file: {e}") from None
        client: IMAPClient | None = None
        try:
            if options.security == "ssl":
                client = IMAPClient(
                    options.host,
                    options.effective_port,
                    ssl=True,
                    ssl_context=context,
                    timeout=options.timeout,
                )
            else:
                client = IMAPClient(
                    options.host, options.effective_port, ssl=False, timeout=options.timeout
                )
                if options.security == "starttls":
                    try:
                        client.starttls(context)
                    except CapabilityError:
                        raise PermanentError(
                            f"IMAP {where} does not offer STARTTLS; use security = 'ssl'"
                        ) from None
            box = cls(client, options)
            box.round_trips = 1
            _authenticate(client, options, credential, where)
            box.round_trips += 1
            return box
        except ssl.SSLCertVerificationError as e:
            _close_quietly(client)
            raise PermanentError(
                f"IMAP {where}: TLS certificate verification failed ({e.verify_message});"
                " set ca_file to the CA that signed the server's certificate"
            ) from None
        except BaseException:
            _close_quietly(client)
            raise

    def close(self) -> None:
        """Log out (or just close the socket while IDLE is running in another thread)."""
        if self.in_idle:
            _close_quietly(self.client, logout=False)
        else:
            _close_quietly(self.client)

    # -- folders ------------------------------------------------------------------

    def folders(self) -> list[str]:
        if self._folders is None:
            self.round_trips += 1
            self._folders = [name for _flags, _delim, name in self.client.list_folders()]
        return self._folders

    def check_folder(self, folder: str) -> None:
        """Raise a clear error naming the folders that exist when ``folder`` does not."""
        names = self.folders()
        if folder in names or (folder.upper() == "INBOX" and "INBOX" in names):
            return
        self._folders = None  # maybe created since; ask once more before failing
        names = self.folders()
        if folder in names:
            return
        raise PermanentError(
            f"IMAP folder {folder!r} does not exist for {self.options.username!r} on"
            f" {self.options.host}; folders: {', '.join(sorted(names)) or '(none)'}"
        )

    def ensure_folder(self, folder: str) -> None:
        if folder in self.folders():
            return
        self.round_trips += 1
        try:
            self.client.create_folder(folder)
        except imaplib.IMAP4.error as e:
            if isinstance(e, imaplib.IMAP4.abort):
                raise
            # created concurrently (ALREADYEXISTS) is fine; anything else surfaces on use
        self._folders = None

    def select(self, folder: str) -> dict[bytes, Any]:
        self.round_trips += 1
        self.selected = self.selected_validity = None
        info: dict[bytes, Any] = self.client.select_folder(folder)
        self.selected = folder
        self.selected_validity = int(info[b"UIDVALIDITY"])
        return info

    def validity_of(self, folder: str) -> int | None:
        """The UIDVALIDITY of ``folder``, selecting it unless it is selected already;
        None when it cannot be selected (it does not exist, for one)."""
        if self.selected != folder or self.selected_validity is None:
            try:
                self.select(folder)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error:
                return None
        return self.selected_validity

    # -- messages -----------------------------------------------------------------

    def uids_from(self, first: int) -> list[int]:
        """UIDs >= ``first`` in the selected folder (``UID SEARCH UID first:*``)."""
        self.round_trips += 1
        found = self.client.search(["UID", f"{first}:*"])
        # "n:*" always includes the highest UID, even when it is below n
        return sorted(int(u) for u in found if int(u) >= first)

    def search(self, criteria: Sequence[Any]) -> list[int]:
        self.round_trips += 1
        return sorted(int(u) for u in self.client.search(list(criteria)))

    def fetch(self, uids: Iterable[int], items: Sequence[str]) -> dict[int, dict[bytes, Any]]:
        uids = list(uids)
        if not uids:
            return {}
        self.round_trips += 1
        return {int(k): v for k, v in self.client.fetch(uids, list(items)).items()}

    def add_flags(self, uids: Sequence[int], flags: Sequence[str | bytes]) -> None:
        self.round_trips += 1
        self.client.add_flags(list(uids), list(flags), silent=True)

    def add_flags_reporting(
        self, uids: Sequence[int], flags: Sequence[str | bytes]
    ) -> dict[int, set[bytes]]:
        """STORE +FLAGS, answering the messages' flags now: a UID missing from the
        answer is a message that is not there (any more)."""
        self.round_trips += 1
        answer = self.client.add_flags(list(uids), list(flags), silent=False)
        found = {int(k): set(v) for k, v in answer.items()}
        # Dovecot sends no untagged FETCH for a message whose flags did not change (it
        # had them all already, e.g. flagged by a run killed before its MOVE): ask for
        # the flags of those, so only a message that is really gone is missing
        unchanged = [u for u in uids if u not in found]
        if unchanged:
            for uid, got in self.fetch(unchanged, ["FLAGS"]).items():
                found[uid] = set(got.get(b"FLAGS", ()))
        # A mail that arrived after this session's last command was unknown to the STORE
        # (the server applies it to the UIDs the session knew, and announces the new
        # mail in its answer): the FETCH above, after that announcement, finds it without
        # the flags. Store them again, now that the session knows the mail.
        wanted = {f.encode() if isinstance(f, str) else f for f in flags}
        late = [u for u in unchanged if u in found and not _has_all(found[u], wanted)]
        if late:
            self.round_trips += 1
            again = self.client.add_flags(late, list(flags), silent=False)
            found.update({int(k): set(v) for k, v in again.items()})
        return found

    def remove_flags(self, uids: Sequence[int], flags: Sequence[str | bytes]) -> None:
        self.round_trips += 1
        self.client.remove_flags(list(uids), list(flags), silent=True)

    def move(self, uids: Sequence[int], folder: str) -> None:
        self.ensure_folder(folder)
        self.round_trips += 1
        if self.client.has_capability("MOVE"):
            self.client.move(list(uids), folder)
        else:
            self.client.copy(list(uids), folder)
            self.delete(uids)

    def delete(self, uids: Sequence[int]) -> None:
        self.round_trips += 2
        self.client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(list(uids))
        else:
            self.client.expunge()

    @property
    def has_idle(self) -> bool:
        return bool(self.client.has_capability("IDLE"))

    def idle_until_news(self, seconds: float, stopping: threading.Event) -> bool:
        """IDLE on the selected folder until a new message arrives (True), ``seconds``
        pass or ``stopping`` is set (False)."""
        self.round_trips += 1
        self.client.idle()
        self.in_idle = True
        news = False
        try:
            deadline = time.monotonic() + seconds
            empty_wakeups = 0
            while not stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(1.0, left)
                t0 = time.monotonic()
                responses = self.client.idle_check(timeout=wait)
                if any(r and r[0] == b"BYE" for r in responses):
                    raise ConnectionError("the IMAP server closed the connection (BYE) in IDLE")
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    news = True
                    break
                # imapclient's idle_check swallows EOF: the socket then polls readable at
                # once and yields nothing, again and again
                if not responses and time.monotonic() - t0 < wait / 2:
                    empty_wakeups += 1
                    if empty_wakeups >= 3:
                        raise ConnectionError("the IMAP connection was closed during IDLE")
                else:
                    empty_wakeups = 0
        finally:
            self.in_idle = False
            self.client.idle_done()
        return news


def _authenticate(
    client: IMAPClient, options: ImapOptions, credential: Callable[[], str], where: str
) -> None:
    """LOGIN or AUTHENTICATE XOAUTH2, raising only exceptions that cannot show the secret.

    The secret is never a local variable here, and every failure is raised *outside* the
    ``except`` block that caught it: the original exception (whose traceback frames in
    imapclient/imaplib hold the password as a local, and whose ``args`` may hold it, as
    imaplib's ``UnicodeEncodeError`` for a non-ASCII password does) is not even chained
    as ``__context__``. A password with a line break is refused before it is sent: it
    would end the LOGIN command inside the password, and the server would answer the
    rest of it as a command, echoing it back in an error.
    """
    kind = "access token" if options.auth == "xoauth2" else "password"
    login_failed: PermanentError | None = None
    lost: str | None = None
    try:
        if options.auth == "xoauth2":
            client.oauth2_login(options.username, credential())
        elif not _sendable_password(credential()):
            login_failed = PermanentError(
                f"IMAP {where}: the password of {options.username!r} cannot be sent with"
                " LOGIN (it has non-ASCII or control characters, a trailing newline?)"
            )
        else:
            client.login(options.username, credential())
    except LoginError as e:
        login_failed = PermanentError(
            f"IMAP login to {where} as {options.username!r} was refused"
            f" ({_server_text(e)}); check the {kind}"
        )
    except PermanentError:
        raise  # from ``credential``: a missing password, a failing token_command
    except CONNECTION_ERRORS as e:
        lost = type(e).__name__
    except Exception as e:  # anything else (imaplib.error, UnicodeError...): no details
        login_failed = PermanentError(
            f"IMAP login to {where} as {options.username!r} failed ({type(e).__name__});"
            f" check the {kind}"
        )
    if lost is not None:
        raise ConnectionError(f"IMAP {where}: the connection was lost during login ({lost})")
    if login_failed is not None:
        raise login_failed


def _sendable_password(value: str) -> bool:
    """Printable ASCII only: imaplib sends LOGIN arguments as ASCII quoted strings."""
    return bool(value) and all(" " <= ch <= "~" for ch in value)


def _server_text(e: BaseException) -> str:
    text = str(e).strip()
    return text[:200] or type(e).__name__


def _close_quietly(client: IMAPClient | None, logout: bool = True) -> None:
    if client is None:
        return
    if logout:
        try:
            client.logout()
            return
        except Exception:  # noqa: S110 - closing a broken connection; the socket goes below
            pass
    try:
        client.shutdown()
    except (OSError, AttributeError, imaplib.IMAP4.error):
        with contextlib.suppress(Exception):
            client._imap.sock.close()


def _has_all(have: set[bytes], wanted: set[bytes]) -> bool:
    """Whether ``have`` holds every flag of ``wanted`` (keywords are case-insensitive)."""
    return {w.lower() for w in wanted} <= {h.lower() for h in have}
