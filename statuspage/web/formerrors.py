"""Service errors in plain words for the admin forms, shown next to the field they are about.

The services speak the API's language ("scheduled_until must be after scheduled_for"): right for a
script, which gets `field` too, but a person filling a form needs the label they see ("The end
must be after the start."). This module rewrites the service's message with the form's labels;
other messages keep their wording, with a leading field name replaced by its label.
"""
from __future__ import annotations

import re

# Field name → how the form calls it (lowercase, with its article; capitalised at a sentence start).
LABELS = {
    "name": "the name",
    "description": "the description",
    "status": "the status",
    "impact": "the impact",
    "body": "the message",
    "group_id": "the group",
    "position": "the position",
    "components": "the affected components",
    "component_ids": "the affected components",
    "scheduled_for": "the start",
    "scheduled_until": "the end",
    "notify": "“Notify subscribers”",
    "restore_components": "“set the affected components back to Operational”",
    "icon_url": "the icon URL",
    "badge_url": "the badge URL",
    "debounce_seconds": "the debounce time",
    "maintenance_reminder_minutes": "the reminder lead times",
    "payload_format": "the message format",
    "subject": "the contact subject",
    "title_template": "the title",
    "body_template": "the body",
    "urgency": "the urgency",
    "min_impact": "the minimum impact",
}

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<f>\w+) (?:must not be empty|is required.*)$"), "Enter {label}."),
    (re.compile(r"^(?P<f>\w+) must be at most (?P<n>\d+) characters$"), "{Label} is too long: at most {n} characters."),
    (re.compile(r"^(?P<f>\w+) must be one of: .*$"), "Choose {label} from the list."),
    (re.compile(r"^(?P<f>\w+) (?:is not a valid ISO 8601 timestamp.*|must be an ISO 8601 timestamp.*)$"),
     "Enter {label} as a date and time."),
    (re.compile(r"^(?P<f>\w+) is out of range$"), "Enter {label} with a year between 1970 and 9000."),
    (re.compile(r"^(?P<f>\w+) must not contain (?:NUL|control) characters$"),
     "{Label} contains invisible control characters: remove them."),
    (re.compile(r"^(?P<f>\w+) must be a whole number.*$"), "Enter {label} as a whole number, with the digits 0-9."),
    (re.compile(r"^(?P<f>\w+) must be at least (?P<n>-?\d+)$"), "{Label} must be at least {n}."),
    (re.compile(r"^(?P<f>\w+) must be at most (?P<n>-?\d+)$"), "{Label} must be at most {n}."),
    (re.compile(r"^scheduled_until must be after scheduled_for$"), "The end must be after the start."),
    (re.compile(r"^(?P<f>\w+): unknown placeholder \{(?P<n>[^}]*)\}.*$"),
     "{Label} uses {{{n}}}, which is not a placeholder: use only those listed above."),
    (re.compile(r"^(?P<f>\w+): component (?P<n>\d+) does not exist$"),
     "Component {n} no longer exists (deleted meanwhile?): reload the page and choose again."),
]


def label(field: str | None, labels: dict[str, str] | None = None) -> str:
    merged = {**LABELS, **(labels or {})}
    return merged.get(field or "", (field or "this field").replace("_", " "))


def plain_message(message: str, field: str | None, labels: dict[str, str] | None = None) -> str:
    """The service's `message` about `field`, in the words of the form."""
    merged = {**LABELS, **(labels or {})}
    # The API's name for the confirmation ("... (allow_past).") means nothing on a form: the form
    # shows its own "confirm" box next to the field.
    message = message.replace(" (allow_past)", "")
    for pattern, template in _RULES:
        match = pattern.match(message)
        if match:
            groups = match.groupdict()
            name = label(groups.get("f") or field, labels)
            text = template.format(label=name, Label=name[:1].upper() + name[1:], n=groups.get("n", ""))
            return text
    if field and field in merged and message.startswith(field + " "):
        name = merged[field]
        message = name[:1].upper() + name[1:] + message[len(field):]
    return message
