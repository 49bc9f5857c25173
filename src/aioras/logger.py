"""oras-py's logging facade, on top of the standard ``logging`` module.

``logger`` forwards to ``logging.getLogger("aioras")``; records carry the caller's location.
The library never configures logging itself: applications either configure ``logging`` as they
usually do or call `setup_logger` for oras-py's console output (coloured on a terminal).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TextIO

import httpx

from ._http.headers import CREDENTIAL_HEADERS, scrub
from ._http.urls import redact

__all__ = [
    "ColorizingStreamHandler",
    "Logger",
    "RedactingFilter",
    "logger",
    "redact_http_logs",
    "setup_logger",
]

LOGGER_NAME = "aioras"

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # StreamHandler is only subscriptable at run time from Python 3.11
    _StreamHandler = logging.StreamHandler


class ColorizingStreamHandler(_StreamHandler):
    """A stream handler that colours each message by level when writing to a terminal.

    ``stream`` is an open text stream (standard error by default) or a file path, which is
    opened for appending and closed with the handler. Colour is used only when ``nocolor`` is
    false and the stream is a terminal. ``use_threads`` is accepted for oras-py compatibility:
    ``logging`` handlers already serialize ``emit`` with a lock.
    """

    BLACK, RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN, WHITE = range(8)
    RESET_SEQ = "\033[0m"
    COLOR_SEQ = "\033[%dm"
    BOLD_SEQ = "\033[1m"

    colors: ClassVar[dict[str, int]] = {
        "WARNING": YELLOW,
        "INFO": GREEN,
        "DEBUG": BLUE,
        "CRITICAL": RED,
        "ERROR": RED,
    }

    def __init__(
        self,
        nocolor: bool = False,
        stream: str | os.PathLike[str] | TextIO | None = None,
        use_threads: bool = False,
    ) -> None:
        self._owns_stream = isinstance(stream, (str, os.PathLike))
        if isinstance(stream, (str, os.PathLike)):
            stream = open(Path(stream), "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        # Resolved at call time, not definition time, so a replaced sys.stderr is honoured.
        super().__init__(stream if stream is not None else sys.stderr)
        self.use_threads = use_threads
        self.nocolor = nocolor or not self.can_color_tty()

    @property
    def is_tty(self) -> bool:
        """Whether the stream is a terminal."""
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def can_color_tty(self) -> bool:
        """Whether colour escapes can be written: the stream is a terminal, not on Windows."""
        # Windows consoles show raw escape codes unless VT processing was switched on.
        return self.is_tty and sys.platform != "win32"

    def decorate(self, record: logging.LogRecord) -> str:
        """Return the formatted record, wrapped in its level's colour when colour is on."""
        message = self.format(record)
        color = self.colors.get(record.levelname)
        if self.nocolor or color is None:
            return message
        return f"{self.COLOR_SEQ % (30 + color)}{message}{self.RESET_SEQ}"

    def emit(self, record: logging.LogRecord) -> None:
        """Write one decorated record to the stream."""
        try:
            self.stream.write(self.decorate(record) + self.terminator)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the handler, and the stream if the handler opened it."""
        try:
            if self._owns_stream:
                self.stream.close()
        finally:
            super().close()


class Logger:
    """oras-py's logger object: level methods that forward to the ``aioras`` logger.

    ``quiet`` drops info and progress messages; ``printshellcmds`` lets `shellcmd`
    messages through. Both are set by `setup_logger`.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(LOGGER_NAME)
        self.stream_handler: logging.Handler | None = None
        self.printshellcmds = False
        self.quiet = False

    def _log(self, level: int, msg: str) -> None:
        # stacklevel 3: the record names whoever called the public method, not this file.
        self.logger.log(level, msg, stacklevel=3)

    def debug(self, msg: str) -> None:
        """Log ``msg`` at debug level."""
        self._log(logging.DEBUG, msg)

    def info(self, msg: str) -> None:
        """Log ``msg`` at info level, unless quiet."""
        if not self.quiet:
            self._log(logging.INFO, msg)

    def warning(self, msg: str) -> None:
        """Log ``msg`` at warning level."""
        self._log(logging.WARNING, msg)

    def error(self, msg: str) -> None:
        """Log ``msg`` at error level."""
        self._log(logging.ERROR, msg)

    def exit(self, msg: str, return_code: int = 1) -> NoReturn:
        """Log ``msg`` at error level, then raise ``SystemExit(return_code)``."""
        self._log(logging.ERROR, msg)
        sys.exit(return_code)

    def location(self, msg: str) -> None:
        """Log ``msg`` at debug level with the caller's file, function and line."""
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        if caller is not None:
            code = caller.f_code
            msg = f"{msg}: {code.co_filename}, {code.co_name}, {caller.f_lineno}"
        del frame, caller  # frames hold references to every local of the caller
        self._log(logging.DEBUG, msg)

    def progress(self, done: int, total: int) -> None:
        """Log ``done of total steps (percent) done`` at info level, unless quiet."""
        if self.quiet:
            return
        fraction = done / total if total else 1.0
        percent = f"{fraction:.2%}" if fraction < 0.01 else f"{fraction:.0%}"
        self._log(logging.INFO, f"{done} of {total} steps ({percent}) done")

    def shellcmd(self, msg: str | None) -> None:
        """Log a shell command at info level when ``printshellcmds`` is set."""
        if msg is not None and self.printshellcmds:
            self._log(logging.INFO, msg)

    def handler(self, msg: dict[str, Any]) -> None:
        """Dispatch an oras-py message dict (``{"level": ..., "msg": ...}``)."""
        self.text_handler(msg)

    def text_handler(self, msg: dict[str, Any]) -> None:
        """Log an oras-py message dict; ``progress`` dicts carry ``done`` and ``total``."""
        level = msg.get("level")
        if level == "progress":
            self.progress(int(msg["done"]), int(msg["total"]))
        elif level == "shellcmd":
            self.shellcmd(msg.get("msg"))
        else:
            levels = {"debug": logging.DEBUG, "warning": logging.WARNING, "error": logging.ERROR}
            if level == "info" and self.quiet:
                return
            self._log(levels.get(str(level), logging.INFO), str(msg.get("msg", "")))

    def set_stream_handler(self, stream_handler: logging.Handler) -> None:
        """Install ``stream_handler`` on the ``aioras`` logger, replacing (and closing) the last."""
        if self.stream_handler is not None:
            self.logger.removeHandler(self.stream_handler)
            self.stream_handler.close()
        self.stream_handler = stream_handler
        self.logger.addHandler(stream_handler)

    def set_level(self, level: int) -> None:
        """Set the level of the ``aioras`` logger."""
        self.logger.setLevel(level)

    def cleanup(self) -> None:
        """Flush, remove and close the handler `setup_logger` installed, if any."""
        if self.stream_handler is not None:
            # The stream may already be closed (a replaced sys.stderr): cleanup must not fail.
            with contextlib.suppress(ValueError, OSError):
                self.stream_handler.flush()
            self.logger.removeHandler(self.stream_handler)
            self.stream_handler.close()
            self.stream_handler = None


logger = Logger()


def setup_logger(
    quiet: bool = False,
    printshellcmds: bool = False,
    nocolor: bool = False,
    stdout: bool = False,
    debug: bool = False,
    use_threads: bool = False,
) -> None:
    """Send aioras's log messages to the console, oras-py style.

    Installs one `ColorizingStreamHandler` on the ``aioras`` logger (standard error, or
    standard output with ``stdout``), replacing the one a previous call installed, so calling it
    again never duplicates output. The level is debug with ``debug``, else warning with
    ``quiet``, else info. Records stop at the ``aioras`` logger (``propagate`` is turned off) so
    a configured root logger does not print them twice; `Logger.cleanup` undoes the
    handler.
    """
    handler = ColorizingStreamHandler(
        nocolor=nocolor, stream=sys.stdout if stdout else sys.stderr, use_threads=use_threads
    )
    logger.set_stream_handler(handler)
    logger.set_level(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logger.quiet = quiet
    logger.printshellcmds = printshellcmds
    logger.logger.propagate = False


# httpcore logs through these (a filter on a parent logger never sees a child's records).
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_SECRET_HEADERS = CREDENTIAL_HEADERS | {"set-cookie", "x-registry-auth"}
# One header of httpcore's DEBUG lines: (b'Name', b'value'), with repr's escapes.
_HEADER_PAIR = re.compile(
    r"""\(b(?P<q1>['"])(?P<name>(?:(?!(?P=q1))[^\\]|\\.)*)(?P=q1), """
    r"""b(?P<q2>['"])(?P<value>(?:(?!(?P=q2))[^\\]|\\.)*)(?P=q2)\)"""
)
_URL_QUERY = re.compile(r"(?P<url>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"?#]*)[?#][^\s'\"]*")


def _redact_header(match: re.Match[str]) -> str:
    name, value, quote = match.group("name"), match.group("value"), match.group("q2")
    # Location, Link, Content-Location...: a query may hold a signature, relative or not.
    value = "[redacted]" if name.lower() in _SECRET_HEADERS else value.split("?", 1)[0]
    return f"(b{match.group('q1')}{name}{match.group('q1')}, b{quote}{value}{quote})"


def redact_text(text: str) -> str:
    """``text`` with URL queries and credential header values removed (httpcore's lines).

    An ``exception=`` part loses its quoted values: a protocol error quotes the header
    line it choked on.
    """
    head, sep, failure = text.partition(" exception=")
    text = _HEADER_PAIR.sub(_redact_header, head) + sep + scrub(failure)
    return _URL_QUERY.sub(lambda m: m.group("url"), text)


class RedactingFilter(logging.Filter):
    """Strips query strings, user info and credentials from httpx's and httpcore's records.

    httpx logs every request's full URL at INFO; after a redirect to presigned storage the
    query holds a signature that grants access. httpcore logs every response's headers at
    DEBUG (a presigned ``Location``, ``Set-Cookie``). aioras's own log lines are redacted
    already; this filter does the same for the HTTP libraries' lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("httpcore"):
            # httpcore formats its messages itself: the text is all there is to redact.
            record.msg = redact_text(record.getMessage())
            record.args = ()
        elif isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def redact_http_logs() -> None:
    """Install `RedactingFilter` on the httpx and httpcore loggers; idempotent.

    Call it when your application logs the HTTP libraries (INFO for httpx, DEBUG for
    httpcore) through the root logger.
    """
    for name in _HTTP_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
