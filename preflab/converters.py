"""URL path converters. ``<id:…>`` is a database id: 1–19 ASCII digits whose value fits a
64-bit signed integer. A larger number is no id at all — the URL does not match (404) —
instead of reaching the database, where it overflows (a 500 on SQLite and PostgreSQL)."""

from __future__ import annotations

from django.urls import register_converter

MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("beyond a 64-bit id")  # Django: no match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
