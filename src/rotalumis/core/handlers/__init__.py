"""Effect handlers: one small class per file (trace, condition, replay, propose, block)."""

from .block import BlockHandler
from .condition import ConditionHandler
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
]
