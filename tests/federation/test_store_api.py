"""federation/store_api.py: hub's Store satisfies FederationStore structurally, and the Protocol lists exactly
the store methods federation calls."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from federation.store_api import STORE_METHODS, FederationStore
from hub.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _params(fn: Callable[..., object]) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", STORE_METHODS)
def test_store_has_each_method_with_the_same_signature(name: str) -> None:
    theirs = getattr(Store, name, None)
    assert theirs is not None, f"hub.store.Store lacks {name}"
    ours = getattr(FederationStore, name)
    assert _params(theirs) == _params(ours), name
    assert inspect.iscoroutinefunction(theirs) == inspect.iscoroutinefunction(ours), name


def test_a_real_store_is_a_federation_store(tmp_path: Path) -> None:
    with Store(tmp_path / "hub.db") as store:
        assert isinstance(store, FederationStore)  # runtime_checkable: every member, attributes included
        assert store.expected_association is None and store.limits is not None


def test_an_object_missing_one_method_is_not() -> None:
    class Partial:
        limits = None
        expected_association = None

    assert not isinstance(Partial(), FederationStore)


def test_the_protocol_lists_exactly_what_federation_calls() -> None:
    """Every ``store.<name>`` in federation/ is a member, and every method is used somewhere."""
    used: set[str] = set()
    for path in sorted((ROOT / "federation").glob("*.py")):
        used |= set(re.findall(r"\bstore\.([a-z_]+)", path.read_text(encoding="utf-8")))
    members = set(STORE_METHODS) | {"limits", "expected_association"}
    assert used <= members, sorted(used - members)
    assert set(STORE_METHODS) <= used, sorted(set(STORE_METHODS) - used)
