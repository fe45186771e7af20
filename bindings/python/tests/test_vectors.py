"""Replays every conformance vector under tests/vectors; no skip list."""

from __future__ import annotations

import json

import pytest

from vectors import MIN_VECTORS, find_vectors, feed_native, run_vector

ALL = find_vectors()


def test_the_walk_finds_the_vectors() -> None:
    assert len(ALL) >= MIN_VECTORS, f"only {len(ALL)} vectors found: a broken path?"


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_vector(name: str, path) -> None:
    run_vector(name, json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_vector_native_dicts(name: str, path) -> None:
    """The same vectors with inputs passed as Python dicts (`Policy.handle`): the
    binding's converter must give the core's codes and paths too."""
    run_vector(name, json.loads(path.read_text(encoding="utf-8")), feed=feed_native)
