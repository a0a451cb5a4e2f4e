"""What the node's long-running processes (watcher, sender) share: logging, one-line errors for a
bad setting, and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from typing import Callable, Protocol

from aidoc.config import OracleSettings
from aidoc.errors import exit_on_user_error


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
    """Builds the service (which returns it and a line announcing it), then runs it until signalled."""

    @exit_on_user_error
    def run() -> None:
        configure_logging()
        service, announcement = build()
        signal.signal(signal.SIGTERM, service.stop)
        signal.signal(signal.SIGINT, service.stop)
        logging.getLogger(f"aidoc.{name}").info(announcement)
        service.run()

    run()
