"""What the node's long-running processes (watcher, sender) share: logging, one-line errors for a
bad setting, a traceback in the log when a running service dies, and a clean stop on SIGTERM or
Ctrl-C."""

from __future__ import annotations

import logging
import signal
from typing import Callable, Protocol

from aidoc.config import OracleSettings
from aidoc.errors import AidocError, exit_on_user_error


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_: object) -> None: ...


def configure_logging(level: str | None = None) -> None:
    """One line per event (AIDOC_LOG_LEVEL, default INFO); never record content or keys."""
    logging.basicConfig(
        level=(level or OracleSettings().log_level).upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def run_service(name: str, build: Callable[[], tuple[Service, str]]) -> None:
    """Builds the service (which returns it and a line announcing it), then runs it until signalled.
    A setting the service refuses ends it with one `error:` line; a failure while it runs (an RPC or
    a socket that went away for good) also leaves its traceback in the log, for the operator, before
    that line."""

    @exit_on_user_error
    def run() -> None:
        configure_logging()
        log = logging.getLogger(f"aidoc.{name}")
        service, announcement = build()
        signal.signal(signal.SIGTERM, service.stop)
        signal.signal(signal.SIGINT, service.stop)
        log.info(announcement)
        try:
            service.run()
        except AidocError:
            raise
        except Exception:
            log.exception("%s stopped on an error it could not recover from", name)
            raise

    run()
