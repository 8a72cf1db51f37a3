"""Validators built from the standards' own schema files, vendored under ``schemas/`` (see its README.md).

Each ``*_errors`` function returns every error as one line (an empty list means valid), so a failing test shows
all that is wrong at once. Formats (uuid, email, uri, date-time) are checked: jsonschema's format checker with
the ``format-nongpl`` extras (rfc3986-validator, rfc3339-validator).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT7

HERE = Path(__file__).parent / "schemas"


def _load(*parts: str) -> Any:
    return json.loads((HERE.joinpath(*parts)).read_text(encoding="utf-8"))


def _errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}"
                  for e in validator.iter_errors(instance))


# -- HSDS 3.0 ------------------------------------------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """Open Referral's CI (validate_examples_json_schema.sh) validates with compiletojsonschema's
    --set-additional-properties-false-everywhere: every object schema with properties accepts no others."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and out.get("type") in ("object", None):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def _hsds_validator() -> jsonschema.protocols.Validator:
    schema = _closed(_load("hsds", "tabular.json"))
    cls = jsonschema.Draft202012Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def hsds_errors(document: Any) -> list[str]:
    """Errors of ``document`` against HSDS 3.0's tabular.json (closed), each table's ``tabular_required``
    fields (schema/<table>.json), and the official datapackage.json: its field names, unique primary keys and
    foreign keys that resolve."""
    errors = _errors(_hsds_validator(), document)
    if not isinstance(document, dict):
        return errors
    package = {r["name"]: r for r in _load("hsds", "datapackage.json")["resources"]}
    ids = {table: {row.get("id") for row in rows} for table, rows in document.items() if isinstance(rows, list)}
    for table, rows in document.items():
        resource = package.get(table)
        if resource is None or not (HERE / "hsds" / f"{table}.json").exists():
            errors.append(f"{table}: not a table of the HSDS 3.0 datapackage (or not vendored)")
            continue
        required = _load("hsds", f"{table}.json").get("tabular_required", [])
        fields = {f["name"] for f in resource["schema"]["fields"]}
        if len(ids[table]) != len(rows):
            errors.append(f"{table}: duplicate ids")
        for i, row in enumerate(rows):
            errors += [f"{table}/{i}: missing tabular_required {name!r}" for name in required if not row.get(name)]
            errors += [f"{table}/{i}: {name!r} is not a field of {table}" for name in row if name not in fields]
            for key in resource["schema"].get("foreignKeys", []):
                value, target = row.get(key["fields"]), key["reference"]["resource"]
                if value is not None and value not in ids.get(target, set()):
                    errors.append(f"{table}/{i}: {key['fields']} {value} is no {target} id")
    return errors


# -- OCDS 1.1 ------------------------------------------------------------------------------------------------


@cache
def _ocds_validators() -> tuple[jsonschema.protocols.Validator, jsonschema.protocols.Validator]:
    release, package = _load("ocds", "release-schema.json"), _load("ocds", "release-package-schema.json")
    registry: Registry = Registry().with_resource(release["id"], Resource(release, DRAFT4))
    cls = jsonschema.Draft4Validator
    return (cls(release, format_checker=cls.FORMAT_CHECKER, registry=registry),
            cls(package, format_checker=cls.FORMAT_CHECKER, registry=registry))


def ocds_release_errors(release: Any) -> list[str]:
    return _errors(_ocds_validators()[0], release)


def ocds_package_errors(package: Any) -> list[str]:
    return _errors(_ocds_validators()[1], package)


# -- Open Badges 3.0 -----------------------------------------------------------------------------------------


@cache
def _ob_validator() -> jsonschema.protocols.Validator:
    schema = copy.deepcopy(_load("openbadges", "ob_v3p0_achievementcredential_schema_draft4.json"))
    # The one VC 2.0 rename (schemas/README.md): validFrom/validUntil in place of issuanceDate/expirationDate.
    schema["required"] = ["validFrom" if name == "issuanceDate" else name for name in schema["required"]]
    for new, old in (("validFrom", "issuanceDate"), ("validUntil", "expirationDate")):
        schema["properties"][new] = schema["properties"].pop(old)
    cls = jsonschema.Draft4Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def ob_errors(credential: Any) -> list[str]:
    return _errors(_ob_validator(), credential)


# -- Murmurations ----------------------------------------------------------------------------------------------


@cache
def _murmurations_validators() -> list[jsonschema.protocols.Validator]:
    base = "https://test-library.murmurations.network/v2/"
    registry: Registry = Registry()
    for path in sorted((HERE / "murmurations" / "fields").glob("*.json")):
        registry = registry.with_resource(f"{base}fields/{path.name}", Resource(_load("murmurations", "fields",
                                                                                      path.name), DRAFT7))
    cls = jsonschema.Draft7Validator
    return [cls(_load("murmurations", "schemas", name), format_checker=cls.FORMAT_CHECKER, registry=registry)
            for name in ("default-v2.0.0.json", "organizations_schema-v1.0.0.json")]


def murmurations_errors(profile: Any) -> list[str]:
    """Errors against the Murmurations default schema and every schema the profile links (the index does
    both); only organizations_schema-v1.0.0 is vendored."""
    errors = [e for v in _murmurations_validators() for e in _errors(v, profile)]
    linked = profile.get("linked_schemas", []) if isinstance(profile, dict) else []
    errors += [f"linked_schemas: {name} is not vendored" for name in linked if name != "organizations_schema-v1.0.0"]
    return errors
