"""AIDoc chain: the Python side of the healthcare data and AI marketplace.

One installed package: the data flow as its parties drive it (`aidoc.flow`), the chain bindings
(`aidoc.chain`), crypto, storage, records, models and training, the command line (`aidoc.cli`),
the compute node's two sides (`aidoc.oracles`, `aidoc.workers`, from the top-level folders oracles/
and workers/) and what they share (`aidoc.node`), and the local stack (`aidoc.stack`)."""

from aidoc.errors import AidocError

__all__ = ["AidocError"]
__version__ = "0.1.0"
