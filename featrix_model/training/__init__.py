"""Self-supervised training of an embedding space (spec §8–§13)."""
