"""The verdict a run ends with, and its exit code: compliant only when
every selected test passed."""

import pytest

from tcup.launcher.progress import verdict


@pytest.mark.parametrize(
    "counts, code, name, words",
    [
        ((5, 5, 0, 0, 0), 0, "compliant", "COMPLIANT: all 5 selected tests passed"),
        ((1, 1, 0, 0, 0), 0, "compliant", "COMPLIANT: all 1 selected test passed"),
        ((5, 3, 1, 1, 0), 1, "failed", "NOT COMPLIANT: 1 test failed"),
        ((273, 7, 0, 266, 0), 5, "not compliant", "none failed, but 266 tests skipped"),
        ((10, 9, 0, 0, 1), 5, "not compliant", "1 test missing from this Tempest"),
        ((10, 8, 0, 1, 1), 5, "not compliant", "1 test skipped and 1 test missing"),
        ((3, 2, 0, 0, 0), 5, "not compliant", "2 of 3 passed"),
        ((0, 0, 0, 0, 0), 5, "not compliant", "0 of 0 passed"),
    ],
)
def test_verdict(counts, code, name, words):
    outcome = verdict(*counts)
    assert (outcome.exit_code, outcome.verdict) == (code, name)
    assert words in outcome.verdict_words
