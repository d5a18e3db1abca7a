"""One ``nn.Module`` per semantic type (spec §5): tensors from a codec → (full_vec, short_vec)."""

from featrix_model.encoders.base import ColumnEncoder

__all__ = ["ColumnEncoder"]
