"""Redaction for log output: secrets and prompts never reach a log line, whoever wrote the log call.

Done in the formatter, not at each call site, because call sites are many and written
by many people; one filter at the exit catches what a careless ``log.info("%s",
body)`` would leak. Two passes:

- structured values (log ``extra`` fields, dict/list arguments) are redacted by key: credentials
  (``authorization``, ``*_key``, ``*token``, ``*secret``, …) and prompts (``prompt``,
  ``negative_prompt``, ``multi_prompt``: user content, possibly personal, and large);
- free text (the rendered message, a traceback) is scrubbed by pattern: bearer/basic
  credentials, gateway ``sk-`` keys, JWTs, URL userinfo, every query value of a URL
  except a few known-harmless ones (a client's ``callback_url`` may carry its own
  token under any name), and quoted ``"prompt": "…"`` pairs.

Pattern scrubbing only runs when a cheap trigger search finds something that could need it, so the
usual log line (an access line of ids and numbers) pays one regex search per string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
PROMPT_KEYS = frozenset({"prompt", "negative_prompt", "multi_prompt"})
_SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "key",
        "sig",
        "jwt",
        "credentials",
        "x_api_key",
    }
)
_SECRET_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "master_key",
    "signature",
)
# Query parameters whose values are never secret and help reading a log (paging,
# expiry of signed URLs).
_SAFE_QUERY_NAMES = frozenset(
    {"pagenum", "pagesize", "page", "size", "limit", "offset", "exp", "expires"}
)
_MAX_DEPTH = 8

# Searched in the lower-cased text: several times cheaper than an IGNORECASE alternation
# (docs/benchmarks.md).
_TRIGGER = re.compile(r"://|sk-|eyj|bearer|basic|prompt|authorization|token|secret|passw|key")
_URL = re.compile(r"""(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s"'<>]+)""")
_AUTH = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
_SK = re.compile(r"\bsk-[A-Za-z0-9_-]{6,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# ``name=value`` / ``name: value`` in free text, for names that say credential
# (authorization, *_key, …).
_KV = re.compile(
    r"(?i)\b([a-z_-]*(?:authorization|token|secret|password|passwd|api_?key|access_?key|secret_?key))"
    r"(\s*[:=]\s*)(?!\[redacted\])(?:(?:bearer|basic)\s+[^\s,;&'\"]+|[^\s,;&'\"]+)"
)
_QUOTED_PROMPT = re.compile(
    r"""(?P<q>["'])(?P<key>negative_prompt|prompt)(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


def secret_key(name: str) -> bool:
    """True when a field called ``name`` holds a credential (matching is case- and
    dash-insensitive)."""
    n = name.lower().replace("-", "_")
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


# field names are few and repeat on every line: decide each once
_KEY_VERDICTS: dict[str, bool] = {}


def redacted_key(name: object) -> bool:
    if not isinstance(name, str):
        return False
    verdict = _KEY_VERDICTS.get(name)
    if verdict is None:
        verdict = secret_key(name) or name.lower() in PROMPT_KEYS
        if len(_KEY_VERDICTS) < 4096:
            _KEY_VERDICTS[name] = verdict
    return verdict


def _scrub_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, eq, _value = pair.partition("=")
        if eq and name.lower() not in _SAFE_QUERY_NAMES:
            parts.append(f"{name}={REDACTED}")
        else:
            parts.append(pair)
    return "&".join(parts)


def _scrub_url(match: re.Match[str]) -> str:
    rest = match.group("rest")
    authority, slash, path = rest.partition("/")
    if "@" in authority:  # userinfo: user:password@host
        authority = REDACTED + "@" + authority.rpartition("@")[2]
    rest = authority + slash + path
    if "?" in rest:
        head, _, tail = rest.partition("?")
        query, hash_, fragment = tail.partition("#")
        rest = head + "?" + _scrub_query(query) + hash_ + fragment
    return match.group("scheme") + rest


def scrub_text(text: str) -> str:
    """``text`` with credentials, URL secrets and quoted prompts replaced by ``[redacted]``."""
    if not _TRIGGER.search(text.lower()):
        return text
    text = _URL.sub(_scrub_url, text)
    text = _AUTH.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _SK.sub("sk-" + REDACTED, text)
    text = _KV.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _QUOTED_PROMPT.sub(
        lambda m: f"{m['q']}{m['key']}{m['q']}{m['sep']}{m['q']}{REDACTED}{m['q']}", text
    )


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` safe to log: credential and prompt fields replaced, strings scrubbed."""
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if depth >= _MAX_DEPTH:
        return "[…]"
    if isinstance(value, Mapping):
        return {k: REDACTED if redacted_key(k) else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return scrub_text(bytes(value).decode("utf-8", "replace"))
    return scrub_text(str(value))


def redact_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A log line's named fields made safe. The usual line (ids, numbers, a route) is checked with
    one search over all its strings and returned as is; anything else goes field by field."""
    texts = []
    for name, value in fields.items():
        if redacted_key(name):
            break
        if isinstance(value, str):
            texts.append(value)
        elif not (value is None or isinstance(value, int | float)):
            break
    else:
        if not texts or not _TRIGGER.search("\n".join(texts).lower()):
            return fields
    return {name: redact_field(name, value) for name, value in fields.items()}


def redact_field(name: str, value: Any) -> Any:
    """One named log field: dropped to ``[redacted]`` when its name says secret or prompt."""
    if redacted_key(name):
        return REDACTED
    return redact(value)
