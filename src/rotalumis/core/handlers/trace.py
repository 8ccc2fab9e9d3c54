"""Record every site of an execution into a :class:`~rotalumis.core.trace.Trace`."""

from __future__ import annotations

from ..runtime import Handler, Message
from ..trace import Trace

__all__ = ["TraceHandler"]


class TraceHandler(Handler):
    """Records each message, once final, into :attr:`trace`.

    Example:
        >>> with TraceHandler() as tracer:
        ...     pass  # run a model here
        >>> tracer.trace
        Trace(0 sites, 0 controlled, log_prob=0)
    """

    def __init__(self) -> None:
        super().__init__()
        self.trace = Trace()

    def reset(self) -> Trace:
        """Start a fresh :class:`Trace` (engines reuse one handler across executions)."""
        self.trace = Trace()
        return self.trace

    def postprocess(self, msg: Message) -> None:
        self.trace.add(msg)

    #: Marks :meth:`postprocess` as exactly ``self.trace.add(msg)``: a stack of this
    #: handler alone lets primitives record directly (a subclass that overrides
    #: ``postprocess`` loses the mark).
    plain_postprocess = postprocess
