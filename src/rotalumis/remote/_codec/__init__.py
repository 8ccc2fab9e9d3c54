"""The PPX codec (private): bytes on the wire <-> :mod:`rotalumis.remote.messages` objects.

``encoder.py`` writes messages (:func:`encode`; ``encode_sample``/``encode_observe`` for the
server's hot path, with per-site templates; ``RUN``... pre-encoded constant messages),
``decoder.py`` reads them (:func:`decode`: a fast checked path, with ``layouts.py``'s learned
per-site layouts, and a thorough one that names what is malformed), ``wire.py`` holds the
low-level FlatBuffers reading and writing both use. The public names are
:func:`rotalumis.remote.encode` and :func:`rotalumis.remote.decode`.
"""

from .decoder import decode
from .encoder import (
    OBSERVE_RESULT,
    RESET,
    RUN,
    TAG_RESULT,
    encode,
    encode_observe,
    encode_sample,
)

__all__ = [
    "OBSERVE_RESULT",
    "RESET",
    "RUN",
    "TAG_RESULT",
    "decode",
    "encode",
    "encode_observe",
    "encode_sample",
]
