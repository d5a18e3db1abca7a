"""Fitted, serialisable value → tensor transforms, one per semantic type (spec §5).

A codec is fitted once on training data, saved as JSON (``to_config``), and turns a whole column
into tensors in one vectorised call (``transform``) — never per row, never per epoch.
"""

from featrix_model.codecs.base import Codec

__all__ = ["Codec"]
