"""Quality marks as Open Badges 3.0 credentials (W3C VC 2.0), signed as VC-JWT with the assessor's key
(docs/opendata.md).

Only the assessor hub holds the key that may sign its marks, and its hub may be offline when someone asks
another hub for a credential. So the credential is issued **once, by the assessor, when it publishes the
attestation**: :func:`with_credential` adds the signed credential — a compact JWS, ``alg`` EdDSA over the
assessor's Ed25519 hub key — to the attestation body's ``credential`` field before the record is signed. The
record then carries it to every hub, and any hub serves the assessor's own signature. Attestations without one
(published by other software) are served as an unsigned credential document built from the record, whose proof
is the record's own signature (``GET /api/v1/records/{id}``, docs/protocol.md).

Identifiers: a hub's DID is the ``did:key`` of its hub key (no network needed to resolve it); the JWS header's
``kid`` is ``did:key:z…#z…`` and the claims are those OB 3.0 §8.2.2 lists (``iss``, ``sub``, ``jti``, ``nbf``,
``exp``) beside the credential itself. Revocation: ``credentialStatus`` of type ``1EdTechRevocationList``
points at ``/api/v1/hubs/{assessor}/revocations.json`` on the assessor's public URL — every hub serves the same
list, derived from the assessor's signed revocation records.

Serving checks what it serves: a ``credential`` whose signature does not verify under the record author's key,
or whose claims disagree with the record (subject, scheme, level, validity), is not served as signed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol import HubKey, Record, attestation_status, current_profiles, format_hub_id

from .common import Omitted, did_key, export_url, iso_seconds

__all__ = [
    "ACHIEVEMENT_TYPE",
    "CONTEXTS",
    "Credential",
    "credential_document",
    "credential_for",
    "issue_credential",
    "revocation_list",
    "revocations_url",
    "verify_credential_jwt",
    "with_credential",
]

CONTEXTS = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
#: The Open Badges 3.0 AchievementType for a quality mark.
ACHIEVEMENT_TYPE = "QualityAssuranceCredential"
OB_SCHEMA = "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
_ALGORITHM = "EdDSA"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Credential:
    """What a hub serves for one attestation: the credential document, the assessor's JWS if it carries a
    valid one, and the attestation's status now."""

    document: dict[str, Any]
    jwt: str | None
    status: str
    reason: str


def revocations_url(base_url: str, assessor: bytes) -> str:
    """Where every hub serves ``assessor``'s 1EdTech revocation list, under ``base_url``."""
    return f"{base_url.rstrip('/')}/api/v1/hubs/{format_hub_id(assessor)}/revocations.json"


def _scheme_name(charter: Record | None, scheme: str) -> str:
    for s in (charter.body["schemes"] if charter is not None else []):
        if s["id"] == scheme:
            return str(s["name"])
    return scheme


def _achievement_id(association: bytes, scheme: str, level: str) -> str:
    return f"urn:coophub:{association.hex()}:scheme:{scheme}:level:{uuid.uuid5(uuid.NAMESPACE_URL, level)}"


def credential_document(*, author: bytes, association: bytes, body: dict[str, Any], credential_id: str,
                        charter: Record | None, names: dict[bytes, str], status_url: str | None,
                        issuer_url: str | None = None) -> dict[str, Any]:
    """The OB 3.0 ``OpenBadgeCredential`` for an attestation ``body`` by ``author`` (no proof)."""
    scheme, level, subject = body["scheme"], body["level"], body["subject"]
    scheme_name = _scheme_name(charter, scheme)
    association_name = charter.body["name"] if charter is not None else "the association"
    issuer: dict[str, Any] = {"id": did_key(author), "type": ["Profile"],
                              "name": names.get(author) or format_hub_id(author)}
    if issuer_url:
        issuer["url"] = issuer_url
    subject_name = names.get(subject) or format_hub_id(subject)
    document: dict[str, Any] = {
        "@context": list(CONTEXTS),
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": issuer,
        "name": f"{scheme_name}: {level}",
        "validFrom": iso_seconds(body["valid_from"]),
        "validUntil": iso_seconds(body["valid_until"]),
        "credentialSubject": {
            "id": did_key(subject),
            "type": ["AchievementSubject"],
            "identifier": [
                {"type": "IdentityObject", "hashed": False, "identityHash": format_hub_id(subject),
                 "identityType": "identifier"},
                {"type": "IdentityObject", "hashed": False, "identityHash": subject_name,
                 "identityType": "ext:name"},
            ],
            "achievement": {
                "id": _achievement_id(association, scheme, level),
                "type": ["Achievement"],
                "achievementType": ACHIEVEMENT_TYPE,
                "name": f"{scheme_name} — {level}",
                "description": f"The {scheme_name} quality mark ({scheme}) of {association_name}, level {level}.",
                "criteria": {"narrative": f"Assessed by an assessor that the charter of {association_name} "
                                          f"authorises for the {scheme_name} scheme."},
            },
        },
        "credentialSchema": [{"id": OB_SCHEMA, "type": "1EdTechJsonSchemaValidator2019"}],
    }
    if body.get("summary"):
        document["description"] = body["summary"]
    evidence = _evidence(body)
    if evidence:
        document["evidence"] = evidence
    if status_url:
        document["credentialStatus"] = {"id": status_url, "type": "1EdTechRevocationList"}
    return document


def _evidence(body: dict[str, Any]) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"type": ["Evidence"], "name": "Assessment evidence"}
    url = export_url(body.get("evidence_url"), Omitted())  # optional in a credential: dropped, not counted
    if url:
        item["id"] = url
    if body.get("evidence_hash"):
        item["narrative"] = f"SHA-256 of the evidence: {bytes(body['evidence_hash']).hex()}"
    return [item] if len(item) > 2 else []


def _claims(document: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The JWT claims OB 3.0 §8.2.2 requires beside the credential."""
    return {**document, "iss": document["issuer"]["id"], "sub": document["credentialSubject"]["id"],
            "jti": document["id"], "nbf": body["valid_from"] // 1000, "exp": body["valid_until"] // 1000}


def _kid(public_key: bytes) -> str:
    did = did_key(public_key)
    return f"{did}#{did.removeprefix('did:key:')}"


def with_credential(key: HubKey, association: bytes, body: dict[str, Any], *, charter: Record | None,
                    names: dict[bytes, str], base_url: str | None) -> dict[str, Any]:
    """``body`` (an attestation this hub is about to publish) with its signed OB 3.0 credential added.

    ``base_url`` is this hub's public URL (config.toml ``url``); without one the credential has no
    ``credentialStatus`` (revocation is then only visible through the federation).
    """
    document = credential_document(author=key.public, association=association, body=body,
                                   credential_id=f"urn:uuid:{uuid.uuid4()}", charter=charter, names=names,
                                   status_url=revocations_url(base_url, key.public) if base_url else None,
                                   issuer_url=base_url)
    private = Ed25519PrivateKey.from_private_bytes(key.seed())
    token = jwt.encode(_claims(document, body), private, algorithm=_ALGORITHM, headers={"kid": _kid(key.public)})
    return {**body, "credential": token}


class _Viewer(Protocol):
    def view(self, fn: Callable[..., T], *args: Any) -> T: ...


def issue_credential(store: _Viewer, key: HubKey, association: bytes, body: dict[str, Any],
                     base_url: str | None) -> dict[str, Any]:
    """``body`` with this hub's signed credential, for an attestation it is about to publish (CLI ``attest``
    and ``POST /api/v1/publish``); a body that already carries one is returned unchanged (the publish check
    verifies it).

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    if "credential" in body:
        return body
    from .load import signing_context

    charter, names = store.view(signing_context)
    return with_credential(key, association, body, charter=charter, names=names, base_url=base_url or None)


def verify_credential_jwt(token: str, attestation: Record) -> dict[str, Any] | None:
    """The credential in ``token`` if the attestation's author signed it and it states what the record states
    (subject, scheme and level, validity); else None."""
    key = Ed25519PublicKey.from_public_bytes(attestation.author)
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[_ALGORITHM],
                                            options={"verify_exp": False, "verify_nbf": False,
                                                     "verify_iat": False})
    except jwt.PyJWTError:
        return None
    body = attestation.body
    subject = claims.get("credentialSubject") or {}
    expected = {
        "kid": (header.get("kid"), _kid(attestation.author)),
        "iss": (claims.get("iss"), did_key(attestation.author)),
        "issuer": ((claims.get("issuer") or {}).get("id"), did_key(attestation.author)),
        "sub": (claims.get("sub"), did_key(body["subject"])),
        "subject": (subject.get("id"), did_key(body["subject"])),
        "achievement": ((subject.get("achievement") or {}).get("id"),
                        _achievement_id(attestation.association, body["scheme"], body["level"])),
        "validFrom": (claims.get("validFrom"), iso_seconds(body["valid_from"])),
        "validUntil": (claims.get("validUntil"), iso_seconds(body["valid_until"])),
        "jti": (claims.get("jti"), claims.get("id")),
    }
    if any(got != want for got, want in expected.values()):
        return None
    return {k: v for k, v in claims.items() if k not in ("iss", "sub", "jti", "nbf", "exp")}


def _context(records: Iterable[Record]) -> tuple[dict[str, list[Record]], Record | None, dict[bytes, str]]:
    by_kind: dict[str, list[Record]] = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record)
    charters = by_kind.get("charter", [])
    charter = min(charters, key=lambda c: (c.created_ms, c.id)) if charters else None
    names = {hub: str(p.body["name"]) for hub, p in current_profiles(by_kind.get("profile", [])).items()}
    return by_kind, charter, names


def _unsigned_id(attestation: Record) -> str:
    return f"urn:coophub:attestation:{attestation.id_hex}"


def credential_for(records: Iterable[Record], attestation_id: bytes, now_ms: int,
                   base_url: str | None) -> Credential | None:
    """What to serve for ``attestation_id`` (None if ``records`` has no such attestation): the assessor's
    signed credential when the record carries a valid one, else a document built from the record."""
    by_kind, charter, names = _context(records)
    attestation = next((a for a in by_kind.get("attestation", []) if a.id == attestation_id), None)
    if attestation is None:
        return None
    if charter is not None:
        s = attestation_status(attestation, charter, by_kind.get("revocation", []), now_ms)
        status, reason = s.status, s.reason
    else:
        status, reason = "unauthorised", "this hub has no charter yet"
    token = attestation.body.get("credential")
    signed = verify_credential_jwt(token, attestation) if isinstance(token, str) else None
    if signed is not None:
        return Credential(signed, token, status, reason)
    status_url = revocations_url(base_url, attestation.author) if base_url else None
    document = credential_document(author=attestation.author, association=attestation.association,
                                   body=attestation.body, credential_id=_unsigned_id(attestation),
                                   charter=charter, names=names, status_url=status_url)
    return Credential(document, None, status, reason)


def revocation_list(records: Iterable[Record], assessor: bytes, list_url: str) -> dict[str, Any]:
    """The 1EdTech revocation list of ``assessor``'s credentials, from its signed revocations of its own
    attestations (a revocation by anyone else has no effect, docs/protocol.md §6.5)."""
    by_kind, _charter, _names = _context(records)
    mine = {a.id: a for a in by_kind.get("attestation", []) if a.author == assessor}
    revoked: list[dict[str, Any]] = []
    done: set[bytes] = set()
    for revocation in sorted(by_kind.get("revocation", []), key=lambda r: (r.created_ms, r.id)):
        target = mine.get(revocation.body["target"])
        if target is None or revocation.author != assessor or target.id in done:
            continue
        done.add(target.id)
        ids = [_unsigned_id(target)]
        token = target.body.get("credential")
        signed = verify_credential_jwt(token, target) if isinstance(token, str) else None
        if signed is not None:
            ids.insert(0, str(signed["id"]))
        revoked += [{"id": cid, "revoked": True, "revocationReason": revocation.body["reason"],
                     "revocation": revocation.id_hex} for cid in ids]
    return {"id": list_url, "issuer": did_key(assessor), "revokedCredential": revoked}
