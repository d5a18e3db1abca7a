"""Fixtures for the modelling-library tests."""

from __future__ import annotations

import pytest

from featrix_model import sentence


def _spy_on(monkeypatch, name: str) -> list[list[str]]:
    calls: list[list[str]] = []
    real = getattr(sentence, name)

    def spy(texts):
        calls.append(list(texts))
        return real(texts)

    monkeypatch.setattr(sentence, name, spy)
    return calls


@pytest.fixture()
def embed_calls(monkeypatch) -> list[list[str]]:
    """Every batch of strings handed to ``sentence.embed`` during the test."""
    return _spy_on(monkeypatch, "embed")


@pytest.fixture()
def model_calls(monkeypatch) -> list[list[str]]:
    """Every batch of strings that reaches the sentence model itself (cache misses)."""
    return _spy_on(monkeypatch, "_encode")
