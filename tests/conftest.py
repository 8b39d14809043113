"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

SMALL = {"width": 40, "height": 40, "initial_tumor_cells": 60}


@pytest.fixture
def small_params() -> dict:
    """A small domain for fast unit tests."""
    return dict(SMALL)
