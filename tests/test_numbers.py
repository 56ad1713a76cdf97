"""The number check of ``grounding_nli``: which numbers and months an answer states, and which
of them its document states too, however either writes them."""

from __future__ import annotations

import pytest

from groundset.validators.numbers import document_numbers, stated_numbers, unsupported_numbers

DOCUMENT = (
    "The museum opened in 1994 and received 2.3 million visitors last year. It has twenty-five"
    " rooms on its third floor, was extended in 2001\u201303 for $5m and lends 1,200 objects."
    " It closes each Feb. and reopened on 2020-06-01 after repairs begun in March."
)


@pytest.mark.parametrize(
    "claim",
    [
        "The museum opened in 1994.",
        "It received 2,300,000 visitors.",  # scaled in the document
        "It had 2.30 million visitors.",
        "It has 25 rooms.",  # a number word in the document
        "The rooms are on the 3rd floor.",  # an ordinal word
        "It was extended until 2003.",  # the end of a range
        "It opened in the 1990s.",  # a decade containing a stated year
        "It lends 1200 objects.",
        "The extension cost 5 million dollars.",
        "It had about 2 million visitors.",  # hedged: not checked
        "It has more than 20 rooms.",
        "1. The museum opened in 1994.",  # a list marker is not a number
        "It reopened in June 2020 after repairs that began in March.",  # June: a numeric date
        "It closes in February.",  # an abbreviation in the document
        "Visitors may come back.",  # the verb, not the month
        "August Wilson visited it.",  # a first name, not the month
    ],
)
def test_numbers_the_document_states_in_any_form_are_supported(claim):
    assert unsupported_numbers(claim, DOCUMENT) == []


@pytest.mark.parametrize(
    ("claim", "missing"),
    [
        ("The museum opened in 1995.", ["1995"]),
        ("It received 2.4 million visitors.", ["2.4 million"]),
        ("It has 26 rooms and opened in 1994.", ["26"]),
        ("It opened in the 1980s.", ["1980s"]),
        ("Entry costs 7% more.", ["7%"]),
        ("It lends 1,300 objects from 2,000 donors.", ["1,300", "2,000"]),
        ("Repairs began in April 1994.", ["April"]),
        ("It reopened on 1 May 2020.", ["May"]),
        ("1995.", ["1995"]),  # a bare answer, not a list marker
    ],
)
def test_numbers_the_document_does_not_state_are_reported_as_written(claim, missing):
    assert unsupported_numbers(claim, DOCUMENT) == missing


@pytest.mark.parametrize(
    "claim", ["COVID-19 closed it.", "It weighs 10kg.", "It opens at 09:30.", "Call 555-0100."]
)
def test_numbers_inside_words_times_and_codes_are_not_claims(claim):
    assert stated_numbers(claim) == []


def test_the_document_side_reads_every_digit_run_and_number_word():
    values = document_numbers("COVID-19 hit in 2020-03; a dozen of the ninety-nine beds, 10kg.")
    assert {19.0, 2020.0, 3.0, 12.0, 99.0, 10.0} <= values
