""" "Did you mean …?" (``bot.suggest``): the edit distance and the ranking of close matches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.suggest import close_matches, distance

# no example database: these are pure unit tests and write nothing
PROPERTY = settings(database=None)

FACTORIES = [f"VN-100{i}" for i in range(1, 6)]
CODES = ["CO-01", "CO-02", "CO-03", "OS-01", "WT-01"]


# --- distance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["", "a", "VN-1001", "CO-02"])
def test_distance_of_a_word_to_itself_is_zero(word: str) -> None:
    assert distance(word, word, 3) == 0
    assert distance(word, word, 0) == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("VN-1001", "VN-1002"),  # substitution
        ("C0-02", "CO-02"),  # substitution (zero for the letter O)
        ("VN-1001", "VN-10001"),  # insertion
        ("VN-1001", "VN-101"),  # deletion
        ("VN-1010", "VN-1001"),  # adjacent transposition
        ("ab", "ba"),  # adjacent transposition
        ("", "a"),  # insertion into nothing
    ],
)
def test_distance_counts_one_edit(a: str, b: str) -> None:
    assert distance(a, b, 3) == 1
    assert distance(b, a, 3) == 1


def test_distance_counts_several_edits() -> None:
    assert distance("kitten", "sitting", 5) == 3
    assert distance("VN-1234", "VN-4321", 5) == 3  # swap 2 and 3, replace 1 and 4


def test_distance_counts_a_non_adjacent_swap_as_two_edits() -> None:
    assert distance("abc", "cba", 3) == 2


def test_distance_is_case_sensitive() -> None:
    assert distance("co-02", "CO-02", 3) == 2


@pytest.mark.parametrize(
    ("a", "b", "limit"),
    [
        ("VN-1", "VN-12345", 2),  # length difference alone exceeds the limit
        ("abcdef", "uvwxyz", 2),  # every character differs
        ("VN-1234", "KH-9876", 3),
        ("a", "b", 0),
    ],
)
def test_distance_stops_early_with_limit_plus_one(a: str, b: str, limit: int) -> None:
    assert distance(a, b, limit) == limit + 1


def test_distance_beyond_the_limit_is_always_exactly_limit_plus_one() -> None:
    # the true optimal-string-alignment distance is 4
    assert distance("bcab", "cbbcc", 2) == 3


def test_distance_at_the_limit_is_exact() -> None:
    assert distance("VN-1234", "VN-1243", 1) == 1
    assert distance("VN-1234", "VN-1256", 2) == 2


_WORDS = st.text(alphabet="ab-1", max_size=7)


@PROPERTY
@given(_WORDS, _WORDS, st.integers(0, 6))
def test_distance_is_symmetric_within_the_limit(a: str, b: str, limit: int) -> None:
    there, back = distance(a, b, limit), distance(b, a, limit)
    if there <= limit and back <= limit:
        assert there == back
    # beyond the limit both directions agree that it is beyond
    assert (there <= limit) == (back <= limit)


@PROPERTY
@given(st.text(max_size=10), st.text(max_size=10), st.integers(0, 6))
def test_distance_is_zero_exactly_for_equal_words(a: str, b: str, limit: int) -> None:
    assert (distance(a, b, limit) == 0) == (a == b)


# --- close matches ----------------------------------------------------------------------------


def test_close_matches_ranks_the_transposition_first() -> None:
    assert close_matches("VN-1010", FACTORIES)[0] == "VN-1001"


def test_close_matches_suggests_the_letter_for_a_zero() -> None:
    assert close_matches("C0-02", CODES)[0] == "CO-02"


def test_close_matches_ignores_case_of_the_word() -> None:
    assert close_matches("vn-1010", FACTORIES)[0] == "VN-1001"
    assert close_matches("c0-02", CODES)[0] == "CO-02"


def test_close_matches_ignores_case_of_close_candidates_and_returns_them_as_given() -> None:
    assert close_matches("CO-02", ["co-02", "xx-99"]) == ["co-02"]


def test_close_matches_strips_the_word() -> None:
    assert close_matches("  C0-02 ", CODES)[0] == "CO-02"


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_close_matches_returns_at_most_n(n: int) -> None:
    found = close_matches("VN-1000", FACTORIES, n=n)
    assert 1 <= len(found) <= n
    assert len(found) == len(set(found))


def test_close_matches_returns_nothing_for_no_candidates() -> None:
    assert close_matches("VN-1001", []) == []


def test_close_matches_returns_nothing_when_nothing_is_close() -> None:
    assert close_matches("ZZZZZZZZ", CODES) == []


def test_close_matches_counts_repeated_candidates_once() -> None:
    assert close_matches("CO-02", ["CO-02", "CO-02", "CO-02"]) == ["CO-02"]


def test_close_matches_accepts_any_iterable() -> None:
    assert close_matches("C0-02", iter(CODES))[0] == "CO-02"
    assert close_matches("C0-02", dict.fromkeys(CODES))[0] == "CO-02"


@PROPERTY
@given(st.text(max_size=12), st.lists(st.text(max_size=12), max_size=8), st.integers(0, 5))
def test_close_matches_returns_distinct_candidates_only(
    word: str, candidates: list[str], n: int
) -> None:
    found = close_matches(word, candidates, n=n)
    assert len(found) <= n
    assert len(found) == len(set(found))
    assert set(found) <= set(candidates)
