"""Values the contracts define, mirrored for Python callers (contracts/libraries/*.sol)."""

from enum import IntEnum, IntFlag


class Purpose(IntFlag):
    """Consent purposes (contracts/libraries/Purposes.sol)."""

    DIAGNOSIS = 1
    RESEARCH = 2
    TRAINING = 4
    INSURANCE = 8


class DataType(IntEnum):
    """What a record holds; a model's input type uses the same codes."""

    LAB_PANEL = 1
    ECG = 2
    IMAGE = 3
    CYTOLOGY = 4


class FailureReason(IntEnum):
    """Why a node could not fulfil a request (contracts/libraries/FailureReasons.sol)."""

    CONSENT_MISSING = 1
    CORRUPT_RECORD = 2
    WRONG_KEY = 3
    WEIGHTS_MISMATCH = 4
    UNSUPPORTED_INPUT = 5
    RECORD_TOO_LARGE = 6
    MODEL_ERROR = 7
    CONSENT_REVOKED = 8
    INTERNAL_ERROR = 255


class JobStatus(IntEnum):
    """ITrainingMarket.JobStatus."""

    NONE = 0
    OPEN = 1
    COMPLETED = 2
    CANCELLED = 3
    ABANDONED = 4


class TrainingStatus(IntEnum):
    """IFederatedRounds.TrainingStatus."""

    NONE = 0
    RUNNING = 1
    FINISHED = 2
    CANCELLED = 3


# TrainingMarket keeps a job's delta in units of 1e-18 and epsilons in milli-units.
DELTA_UNIT = 10**18
EPSILON_MILLI = 1000


class RequestStatus(IntEnum):
    """IDiagnosisMarket.Status."""

    NONE = 0
    PENDING = 1
    FULFILLED = 2
    FAILED = 3
    CANCELLED = 4


class ModelStatus(IntEnum):
    """IModelRegistry.ModelStatus."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    DEACTIVATED = 3


def input_types_mask(*data_types: DataType) -> int:
    """The NodeRegistry capability bitmask for the given data types (bit t = type t)."""
    mask = 0
    for data_type in data_types:
        mask |= 1 << int(data_type)
    return mask
