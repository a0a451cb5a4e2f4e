"""AIDoc chain: the Python side of the healthcare data and AI marketplace.

What the Brownie scripts, the tests and (later) the oracle workers share lives here: the
marketplace's constants, EIP-712 signing of consents and permits, and deployment records.
"""

from aidoc.errors import AidocError

__all__ = ["AidocError"]
__version__ = "0.1.0"
