"""Open data from the federated directory (docs/opendata.md): Open Referral HSDS 3.0 (hub.hsds), an OCDS 1.1
release per closed joint purchase, each quality mark as an Open Badges 3.0 / W3C VC 2.0 credential, a
Murmurations profile per hub, and the publish-time checks that keep every export valid.

Modules: ``common`` (ids, did:key, what an export may carry), ``validate`` (publish checks), ``ocds``,
``badges``, ``murmurations`` (pure builders over records), ``load`` (the SQL that gathers their records),
``routes`` (the HTTP endpoints). Importing this package imports none of them.
"""

__all__ = ["badges", "common", "export", "load", "murmurations", "ocds", "routes", "validate"]
