"""Hide messages from the handlers further out."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..runtime import Handler, Message

__all__ = ["BlockHandler"]


class BlockHandler(Handler):
    """Stop messages from reaching handlers outside this one.

    Args:
        hide: A predicate on messages; or ``None`` to hide every message.
        names: Hide only sites with these names.
        kinds: Hide only these kinds (``"sample"``, ``"observe"``, ``"tag"``, ``"factor"``).
    """

    def __init__(
        self,
        hide: Callable[[Message], bool] | None = None,
        names: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        self._hide = hide
        self._names = frozenset(names) if names is not None else None
        self._kinds = frozenset(kinds) if kinds is not None else None

    def hides(self, msg: Message) -> bool:
        """Whether ``msg`` is hidden from outer handlers."""
        if self._names is not None and msg.name not in self._names:
            return False
        if self._kinds is not None and msg.kind not in self._kinds:
            return False
        return self._hide(msg) if self._hide is not None else True

    def process(self, msg: Message) -> None:
        if self.hides(msg):
            msg.stop = True
