"""Prompt references into the body's lists: ``<<<image_N>>>``, ``<<<element_N>>>``,
``<<<video_N>>>`` and ``<<<voice_N>>>``, N counted from 1 in array order.

A reference past the end of its list would make Kling fail the task after accepting it (or render
without the subject), so it is refused up front with the list's real size in the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from kling_gateway.domain._checks import fail

# reference name → the list it indexes
LISTS = {
    "image": "image_list",
    "element": "element_list",
    "video": "video_list",
    "voice": "voice_list",
}
_REF = re.compile(r"<<<(image|element|video|voice)_([0-9]+)>>>")
_MARK = "<<<"  # cheap substring test before running the regex on every prompt
_MAX_DIGITS = 4  # no list holds more than a handful; longer numbers are out of range anyway


def check_refs(prompts: Iterable[tuple[str, str]], counts: Mapping[str, int]) -> frozenset[str]:
    """Check every reference in the (field, prompt) pairs against ``counts`` (reference name →
    list length); return the reference names used."""
    used: set[str] = set()
    for field, prompt in prompts:
        if _MARK not in prompt:
            continue
        for match in _REF.finditer(prompt):
            name, digits = match.group(1), match.group(2)
            number = int(digits) if len(digits) <= _MAX_DIGITS else 0
            size = counts.get(name, 0)
            if not 1 <= number <= size:
                listed = LISTS[name]
                fail(
                    field,
                    f"{match.group(0)[:24]} refers to an item that is not in {listed} "
                    f"({listed} has {size}; <<<{name}_N>>> means {listed}[N-1])",
                )
            used.add(name)
    return frozenset(used)
