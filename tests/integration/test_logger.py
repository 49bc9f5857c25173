"""The oras-py style logging facade of aioras.logger."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aioras.logger import ColorizingStreamHandler, Logger, logger, setup_logger


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    yield
    logger.cleanup()
    logger.quiet = False
    logger.printshellcmds = False
    logger.logger.setLevel(logging.NOTSET)
    logger.logger.propagate = True


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="aioras")
    return caplog


def test_levels_forward_to_aioras_logger(records: pytest.LogCaptureFixture) -> None:
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    got = [(r.name, r.levelname, r.getMessage()) for r in records.records]
    assert got == [
        ("aioras", "DEBUG", "d"),
        ("aioras", "INFO", "i"),
        ("aioras", "WARNING", "w"),
        ("aioras", "ERROR", "e"),
    ]
    # Records point at the caller, not at the facade.
    assert all(r.pathname == __file__ for r in records.records)


def test_exit_logs_then_exits(records: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        logger.exit("fatal", return_code=3)
    assert info.value.code == 3
    assert records.records[-1].levelname == "ERROR"
    assert records.records[-1].getMessage() == "fatal"
    with pytest.raises(SystemExit) as info:
        logger.exit("again")
    assert info.value.code == 1


def test_progress_location_shellcmd(records: pytest.LogCaptureFixture) -> None:
    logger.progress(1, 3)
    logger.progress(1, 1000)
    logger.progress(0, 0)
    logger.location("here")
    logger.shellcmd("ls -l")
    logger.printshellcmds = True
    logger.shellcmd("ls -l")
    logger.shellcmd(None)
    messages = [r.getMessage() for r in records.records]
    assert messages[:3] == [
        "1 of 3 steps (33%) done",
        "1 of 1000 steps (0.10%) done",
        "0 of 0 steps (100%) done",
    ]
    assert messages[3].startswith("here: ")
    assert "test_progress_location_shellcmd" in messages[3]
    assert messages[4:] == ["ls -l"]


def test_quiet_drops_info_and_progress(records: pytest.LogCaptureFixture) -> None:
    logger.quiet = True
    logger.info("hidden")
    logger.progress(1, 2)
    logger.warning("shown")
    assert [r.getMessage() for r in records.records] == ["shown"]


def test_message_dicts(records: pytest.LogCaptureFixture) -> None:
    logger.handler({"level": "warning", "msg": "w"})
    logger.text_handler({"level": "info", "msg": "i"})
    logger.handler({"level": "progress", "done": 2, "total": 4})
    got = [(r.levelname, r.getMessage()) for r in records.records]
    assert got == [("WARNING", "w"), ("INFO", "i"), ("INFO", "2 of 4 steps (50%) done")]


def test_setup_logger_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    aioras_logger = logging.getLogger("aioras")
    before = list(aioras_logger.handlers)
    setup_logger(debug=True)
    setup_logger(quiet=False, debug=True)
    added = [h for h in aioras_logger.handlers if h not in before]
    assert len(added) == 1
    assert isinstance(added[0], ColorizingStreamHandler)
    assert aioras_logger.level == logging.DEBUG
    assert aioras_logger.propagate is False
    logger.debug("to stderr")
    captured = capsys.readouterr()
    assert captured.err == "to stderr\n"  # not a tty: no colour
    assert captured.out == ""


def test_setup_logger_options(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logger(stdout=True)
    assert logging.getLogger("aioras").level == logging.INFO
    logger.debug("dropped")
    logger.info("to stdout")
    assert capsys.readouterr().out == "to stdout\n"
    setup_logger(quiet=True, printshellcmds=True)
    assert logging.getLogger("aioras").level == logging.WARNING
    assert logger.quiet
    assert logger.printshellcmds
    logger.cleanup()
    assert logger.stream_handler is None


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("aioras", level, __file__, 1, msg, None, None)


def test_colours_only_on_a_tty() -> None:
    tty = FakeTTY()
    handler = ColorizingStreamHandler(stream=tty)
    assert handler.is_tty
    assert not handler.nocolor
    handler.emit(record(logging.ERROR, "bad"))
    assert tty.getvalue() == "\033[31mbad\033[0m\n"

    plain = io.StringIO()
    ColorizingStreamHandler(stream=plain).emit(record(logging.ERROR, "bad"))
    assert plain.getvalue() == "bad\n"

    forced_off = FakeTTY()
    ColorizingStreamHandler(nocolor=True, stream=forced_off).emit(record(logging.INFO, "ok"))
    assert forced_off.getvalue() == "ok\n"


def test_handler_writes_to_a_path(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    handler = ColorizingStreamHandler(stream=str(path), use_threads=True)
    handler.emit(record(logging.WARNING, "saved"))
    handler.close()
    assert handler.stream.closed
    assert path.read_text() == "saved\n"


def test_set_stream_handler_replaces() -> None:
    own = Logger()
    first, second = logging.NullHandler(), logging.NullHandler()
    own.set_stream_handler(first)
    own.set_stream_handler(second)
    assert first not in own.logger.handlers
    assert second in own.logger.handlers
    own.cleanup()
    assert second not in own.logger.handlers
    own.set_level(logging.ERROR)
    assert own.logger.level == logging.ERROR


def test_importing_aioras_configures_no_logging() -> None:
    code = (
        "import logging, aioras.logger, aioras.oci, aioras.utils, aioras.decorator;"
        "print(len(logging.getLogger('aioras').handlers), len(logging.getLogger().handlers),"
        " logging.getLogger('aioras').level)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0", "0"]


def test_redact_http_logs_hides_presigned_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    import httpx

    from aioras.logger import redact_http_logs

    http_logger = logging.getLogger("httpx")
    before = list(http_logger.filters)
    try:
        redact_http_logs()
        redact_http_logs()  # idempotent
        url = httpx.URL("https://storage.example/bucket/blob?X-Amz-Signature=s3cr3t")
        with caplog.at_level(logging.INFO, logger="httpx"):
            http_logger.info('HTTP Request: %s %s "%s"', "GET", url, "200 OK")
        assert "s3cr3t" not in caplog.text
        assert "https://storage.example/bucket/blob" in caplog.text
        assert len(http_logger.filters) == len(before) + 1
    finally:
        http_logger.filters[:] = before
