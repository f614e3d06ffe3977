""" "Did you mean …?" for ids, issue codes and country codes.

Typed ids go wrong by a slipped, missing, extra or swapped character, so candidates are ranked by
edit distance counting a swap of neighbours as one edit (optimal string alignment); ties go
to the candidate that differs only by look-alike characters (0/O, 1/I/L, 5/S, 8/B); then
difflib's similarity finds the rest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance, or ``limit + 1`` once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


_LOOK_ALIKES = str.maketrans("0158L", "OISBI")


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that ``word`` was probably meant to be, best first."""
    word = word.strip().upper()
    folded = word.translate(_LOOK_ALIKES)
    pool = list(dict.fromkeys(candidates))
    limit = max(1, len(word) // 3)
    near = sorted(
        (d, distance(folded, c.upper().translate(_LOOK_ALIKES), limit), c)
        for c in pool
        if (d := distance(word, c.upper(), limit)) <= limit
    )
    found = [c for *_, c in near[:n]]
    if len(found) < n:
        extra = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
        found += [c for c in extra if c not in found][: n - len(found)]
    return found
