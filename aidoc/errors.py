"""The package's exception root. Every error a user can cause is an AidocError whose message
says what to do about it, so command-line entry points can print one line instead of a traceback."""


class AidocError(Exception):
    """Root of every error raised by the aidoc package."""


class ConfigError(AidocError):
    """A setting is missing or malformed."""


class DeploymentNotFound(AidocError):
    """No deployment record exists for the connected chain."""
