"""Word problems for the built-in ``arithmetic`` task: one- and two-step, small numbers."""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from evo.tasks.generate_common import Record

_PEOPLE = ("Mia", "Omar", "Lucy", "Ben", "Aisha", "Tom", "Nora", "Leo", "Zara", "Sam")
_THINGS = ("apples", "pencils", "stickers", "marbles", "cookies", "stamps", "shells", "books",
           "balloons", "cards")


def _problem(rng: Random, kind: str) -> tuple[str, int]:
    who, friend = rng.sample(_PEOPLE, 2)
    what = rng.choice(_THINGS)
    if kind == "add":
        a, b = rng.randint(2, 9), rng.randint(2, 9)  # from 2: every count is a plural noun
        text = rng.choice((
            f"{who} has {a} {what}. {friend} gives {who} {b} more. How many {what} does {who} "
            "have now?",
            f"There are {a} {what} on the table and {b} {what} on the shelf. How many {what} "
            "are there altogether?",
            f"{who} found {a} {what} in the morning and {b} {what} in the afternoon. How many "
            f"{what} did {who} find?",
        ))
        return text, a + b
    if kind == "subtract":
        a = rng.randint(4, 15)
        b = rng.randint(1, a - 1)
        text = rng.choice((
            f"{who} had {a} {what} and gave {b} of them to {friend}. How many {what} does {who} "
            "have left?",
            f"A box held {a} {what}. {who} took out {b}. How many {what} are still in the box?",
            f"{who} bought {a} {what} and lost {b} on the way home. How many {what} does {who} "
            "have now?",
        ))
        return text, a - b
    if kind == "multiply":
        a, b = rng.randint(2, 5), rng.randint(2, 6)
        text = rng.choice((
            f"There are {a} bags with {b} {what} in each bag. How many {what} are there in "
            "total?",
            f"{who} buys {a} packs of {what}. Each pack has {b} {what}. How many {what} does "
            f"{who} buy?",
        ))
        return text, a * b
    a, b = rng.randint(2, 9), rng.randint(1, 6)
    c = rng.randint(1, a + b - 1)
    text = rng.choice((
        f"{who} has {a} {what}, gets {b} more, and then gives {c} to {friend}. How many {what} "
        f"does {who} have now?",
        f"A jar has {a} {what}. {who} adds {b} and {friend} takes {c} away. How many {what} are "
        "in the jar?",
    ))
    return text, a + b - c


ARITH_KINDS = ("add", "add", "add", "subtract", "subtract", "multiply", "two_step")


def arithmetic_records(rng: Random) -> Iterator[Record]:
    while True:
        kind = rng.choice(ARITH_KINDS)
        text, answer = _problem(rng, kind)
        yield text, str(answer), kind
