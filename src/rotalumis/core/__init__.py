"""L0 core: distributions, addresses, the handler stack, traces, primitives and models."""

from .distributions import *  # noqa: F403
from .distributions import __all__ as _dist_all
from .engines import available_engines, register_engine
from .errors import (
    CheckpointError,
    DatasetError,
    DistributionError,
    EscapedRandomnessWarning,
    InferenceError,
    ModelError,
    ObservationError,
    ProtocolError,
    RemoteSimulatorError,
    RotalumisError,
    SupportError,
    TraceLimitError,
)
from .handlers import (
    BlockHandler,
    ConditionHandler,
    ProposeHandler,
    ReplayHandler,
    TraceHandler,
)
from .interest import ParametersOfInterest
from .limits import TraceLimits, limit_traces
from .model import Engine, FunctionModel, Model, model
from .primitives import factor, observe, sample, tag
from .proposal import MixtureProposal, Proposal, ProposalStats
from .rng import RNG
from .runtime import Execution, Handler, Message, apply_stack, current_execution, current_rng
from .trace import Trace, Variable
from .validity import InvalidPolicy, SimulationCounter

__all__ = [
    *_dist_all,
    "RNG",
    "BlockHandler",
    "CheckpointError",
    "ConditionHandler",
    "DatasetError",
    "DistributionError",
    "Engine",
    "EscapedRandomnessWarning",
    "Execution",
    "FunctionModel",
    "Handler",
    "InferenceError",
    "InvalidPolicy",
    "Message",
    "Model",
    "ModelError",
    "ObservationError",
    "ParametersOfInterest",
    "MixtureProposal",
    "Proposal",
    "ProposalStats",
    "ProposeHandler",
    "ProtocolError",
    "RemoteSimulatorError",
    "ReplayHandler",
    "RotalumisError",
    "SimulationCounter",
    "SupportError",
    "Trace",
    "TraceHandler",
    "TraceLimitError",
    "TraceLimits",
    "Variable",
    "apply_stack",
    "available_engines",
    "current_execution",
    "current_rng",
    "factor",
    "limit_traces",
    "model",
    "observe",
    "register_engine",
    "sample",
    "tag",
]
