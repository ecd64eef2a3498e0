"""Typed keys for what the plugin keeps in ``config.stash`` and ``item.stash``."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.profile import LoadedProfile

PROFILE_KEY = pytest.StashKey[LoadedProfile]()
RUN_ID_KEY = pytest.StashKey[str]()
EVIDENCE_KEY = pytest.StashKey[dict[str, Any]]()
