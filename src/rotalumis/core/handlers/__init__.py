"""Effect handlers: one small class per file (trace, condition, replay, propose, block)."""

from .block import BlockHandler
from .condition import ConditionHandler, normalize_observation
from .propose import Proposal, ProposeHandler
from .replay import ReplayHandler
from .trace import TraceHandler

__all__ = [
    "BlockHandler",
    "ConditionHandler",
    "Proposal",
    "ProposeHandler",
    "ReplayHandler",
    "TraceHandler",
    "normalize_observation",
]
