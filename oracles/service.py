"""What the watcher and the sender share as processes: logging, one-line errors for a bad setting,
and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from typing import Callable, Protocol

from aidoc.errors import exit_on_user_error
from aidoc.logs import configure_logging


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_: object) -> None: ...


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
