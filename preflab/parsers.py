"""The API's JSON parser: DRF's, plus the two inputs it lets through to a 500.

* JSON nested deeper than the interpreter can recurse (``[[[[…]]]]`` 10,000 deep) makes the
  decoder raise ``RecursionError``, which DRF does not catch;
* a ``\\ud800`` escape is valid JSON text but decodes to a lone surrogate, a string that no
  database driver, log line or JSON response can encode.

Both are malformed requests: a 400 ``parse_error`` like any other bad JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            # every string, key and value, must be encodable: a lone surrogate is not
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a string holds a lone surrogate.") from None
        return data
