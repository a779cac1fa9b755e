"""Content files checked against the JSON schemas in ``schemas/``.

fastjsonschema says valid or not, fast; jsonschema then explains the errors
of the few files that are not, each at the line of the offending key.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema

from ussd_app.engine.problems import Problem
from ussd_app.engine.yamlfile import locate


def _schema(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schemas", name).read_text("utf-8")
    return dict(json.loads(text))


NODE_VALIDATOR = jsonschema.Draft202012Validator(_schema("node.schema.json"))
SITE_VALIDATOR = jsonschema.Draft202012Validator(_schema("site.schema.json"))
CONTACTS_VALIDATOR = jsonschema.Draft202012Validator(_schema("contacts.schema.json"))
# fastjsonschema compiles the schema to Python: it says valid or not, fast; jsonschema
# then explains the errors of the few files that are not.
_FAST_CHECKS = {
    id(NODE_VALIDATOR): fastjsonschema.compile(_schema("node.schema.json")),
    id(SITE_VALIDATOR): fastjsonschema.compile(_schema("site.schema.json")),
    id(CONTACTS_VALIDATOR): fastjsonschema.compile(_schema("contacts.schema.json")),
}


def schema_problems(name: str, text: str, data: Any, validator: Any) -> list[Problem]:
    fast = _FAST_CHECKS.get(id(validator))
    if fast is not None:
        try:
            fast(data)
            return []  # valid: skip the slower validator that explains errors
        except fastjsonschema.JsonSchemaException:
            pass
    found = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in
                                                                   e.absolute_path]):
        path = list(err.absolute_path)
        where = ".".join(str(p) for p in path) or "file"
        found.append(Problem(name, locate(text, path + _offending_key(err)),
                             f"{where}: {_short(err)}", _schema_hint(err)))
    return found


def _offending_key(err: jsonschema.ValidationError) -> list[Any]:
    """For a bad key the schema points at its mapping; point at the key itself."""
    if err.validator == "additionalProperties":
        found = re.search(r"'([^']+)'", err.message)
        return [found.group(1)] if found else []
    if "propertyNames" in err.absolute_schema_path:
        return [err.instance] if isinstance(err.instance, str) else []
    return []


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    if err.validator == "pattern" and isinstance(err.instance, str):
        return f"{err.instance!r} is not in the expected form"
    return err.message if len(err.message) < 160 else err.message[:157] + "..."


def _schema_hint(err: jsonschema.ValidationError) -> str:
    hints = {
        "additionalProperties": "remove the key or fix its spelling (see docs/content-format.md)",
        "required": "add the missing key",
        "type": "check the value's type: text needs a language code per line",
        "enum": "use one of the listed values",
        "pattern": "ids use a-z, 0-9 and _; language codes like en, ar, fr_CA",
        "maxLength": "shorten the text or split it",
        "minLength": "write the text or remove the line",
    }
    return hints.get(str(err.validator), "see docs/content-format.md")
