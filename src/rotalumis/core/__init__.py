"""L0 core: distributions, addresses, the handler stack, traces, primitives and models."""

from .distributions import *  # noqa: F403
from .distributions import __all__ as _dist_all
from .errors import (
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
)
from .handlers import (
    BlockHandler,
    ConditionHandler,
    ProposeHandler,
    ReplayHandler,
    TraceHandler,
)
from .model import FunctionModel, Model, available_engines, model, register_engine
from .primitives import factor, observe, sample, tag
from .rng import RNG
from .runtime import Execution, Handler, Message, apply_stack, current_execution, current_rng
from .trace import Trace, Variable

__all__ = [
    *_dist_all,
    "RNG",
    "BlockHandler",
    "ConditionHandler",
    "DatasetError",
    "DistributionError",
    "EscapedRandomnessWarning",
    "Execution",
    "FunctionModel",
    "Handler",
    "InferenceError",
    "Message",
    "Model",
    "ModelError",
    "ObservationError",
    "ProposeHandler",
    "ProtocolError",
    "RemoteSimulatorError",
    "ReplayHandler",
    "RotalumisError",
    "SupportError",
    "Trace",
    "TraceHandler",
    "Variable",
    "apply_stack",
    "available_engines",
    "current_execution",
    "current_rng",
    "factor",
    "model",
    "observe",
    "register_engine",
    "sample",
    "tag",
]
