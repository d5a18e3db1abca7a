"""featrix_model: self-supervised embedding spaces for tabular data (pure PyTorch, no Dagster)."""

from __future__ import annotations

__all__ = ["ArtifactError", "EmbeddingSpace", "Predictor", "RelationalSpace", "load_space"]


def __getattr__(name: str):
    # Lazy so `import featrix_model.types` stays light (no torch model construction at import).
    if name == "EmbeddingSpace":
        from featrix_model.space import EmbeddingSpace

        return EmbeddingSpace
    if name == "Predictor":
        from featrix_model.predictor import Predictor

        return Predictor
    if name == "RelationalSpace":
        from featrix_model.relational import RelationalSpace

        return RelationalSpace
    if name == "ArtifactError":
        from featrix_model.io import ArtifactError

        return ArtifactError
    if name == "load_space":
        from featrix_model.loading import load_space

        return load_space
    raise AttributeError(name)
