"""federation/status.py's session words for a peer without an open session (the open ones are checked with real
hubs in tests/federation/test_session_network.py, tests/cli/test_peer_sessions.py and
tests/web/test_network_sessions.py)."""

from __future__ import annotations

import pytest

from federation.peers import PeerState
from federation.status import SESSION_STATES, session_state


@pytest.mark.parametrize(("state", "session", "dialing", "expected"), [
    ("new", "", False, "none"),
    ("new", "", True, "connecting"),
    ("healthy", "closed:going-away", False, "closed"),
    ("healthy", "closed:going-away", True, "connecting"),
    ("failing", "closed", False, "backoff"),
    ("failing", "", True, "connecting"),
    ("dropped", "closed:dropped", True, "dropped"),  # dropped wins over everything
])
def test_session_state_without_an_open_session(state: str, session: str, dialing: bool, expected: str) -> None:
    peer = PeerState(url="http://127.0.0.1:9", score=100, state=state, session=session)
    assert session_state(peer, None, dialing) == expected
    assert expected in SESSION_STATES


def test_no_peer_and_no_session_is_none() -> None:
    assert session_state(None, None, False) == "none"
