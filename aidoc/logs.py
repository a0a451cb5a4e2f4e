"""Logging for the node's processes: one line per event, never record content or keys."""

from __future__ import annotations

import logging
import os

from aidoc.config import ENV_PREFIX


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get(ENV_PREFIX + "LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
