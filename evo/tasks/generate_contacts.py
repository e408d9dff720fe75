"""Short messages about a person for the built-in ``contacts`` task; the target is the JSON object
of their name, age, city and company.

Most messages also mention a second person, a second city or another number (a street number,
a year, a floor), so that taking the first name or the first number seen is not enough.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from random import Random

from evo.tasks.generate_common import Record, cap

# (first name, pronoun): the pronoun keeps the sentences about one person grammatical
_FIRST = (("Maria", "she"), ("Daniel", "he"), ("Priya", "she"), ("Kenji", "he"),
          ("Amara", "she"), ("Lukas", "he"), ("Sofia", "she"), ("Mateo", "he"),
          ("Hannah", "she"), ("Tariq", "he"), ("Ingrid", "she"), ("Samuel", "he"),
          ("Chloe", "she"), ("Yusuf", "he"), ("Elena", "she"), ("Oscar", "he"))
_LAST = ("Lopez", "Okafor", "Nair", "Tanaka", "Fischer", "Haddad", "Kowalski", "Brennan",
         "Silva", "Lindqvist", "Moreau", "Adeyemi", "Novak", "Castillo")
_CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Hamburg", "Kraków", "Melbourne",
           "Denver", "Lyon", "Bristol", "Montréal", "Seville", "Dublin", "Pune")
_COMPANIES = ("Bluefin Logistics", "Copperleaf Studio", "Harbor Analytics", "Quill Robotics",
              "Saltmarsh Foods", "Tidewater Bank", "Brightline Health", "Orchard Software",
              "Granite Works", "Lumen Optics", "Kestrel Air", "Fernhill Press")
_ROLES = ("an accountant", "a nurse", "a designer", "a software engineer", "a sales manager",
          "a lab technician", "an editor", "a data analyst")

CONTACT_KINDS = ("plain", "other_person", "other_city", "other_number")


def _person(rng: Random) -> tuple[str, str]:
    first, pronoun = rng.choice(_FIRST)
    return f"{first} {rng.choice(_LAST)}", pronoun


def _message(rng: Random, kind: str, name: str, pron: str, age: int, city: str,
             company: str) -> str:
    role = rng.choice(_ROLES)
    if kind == "plain":
        return rng.choice((
            f"Hi, I'm {name}, {age}, and I work at {company} in {city}.",
            f"New contact: {name}, age {age}, based in {city}, employed by {company}.",
            f"{name} is {role} at {company}. {cap(pron)} is {age} and lives in {city}.",
            f"Please add {name} ({age}) to the list; {pron} works for {company} and lives in "
            f"{city}.",
            f"{company} has hired {name}, a {age}-year-old from {city}.",
            f"Name: {name}. Age: {age}. City: {city}. Employer: {company}.",
            f"At {age}, {name} already leads a team at the {city} office of {company}.",
        ))
    if kind == "other_person":
        first = rng.choice([f for f, _ in _FIRST if f != name.split()[0]])
        other = f"{first} {rng.choice(_LAST)}"
        return rng.choice((
            f"{other} asked me to pass this on: {name} from {company} is {age} and lives in "
            f"{city}.",
            f"{name}, {age}, has joined {company} in {city}; {pron} reports to {other}.",
            f"Thanks to {other} for introducing {name}, {role} at {company}. {cap(pron)} is "
            f"{age} and based in {city}.",
            f"Update from {other}: the new hire at {company} is {name}, aged {age}, who lives in "
            f"{city}.",
        ))
    if kind == "other_city":
        before = rng.choice([c for c in _CITIES if c != city])
        return rng.choice((
            f"{name} grew up in {before} but now lives in {city}, where {pron} works for "
            f"{company}. {cap(pron)} is {age}.",
            f"After ten years in {before}, {name} ({age}) moved to {city} to join {company}.",
            f"{name} is {age}, lives in {city} and works at {company}, though {pron} flies to "
            f"{before} every month.",
            f"Originally from {before}, {name} is now {role} at {company} in {city}, aged {age}.",
        ))
    number = rng.randint(2, 99)
    year = rng.randint(2009, 2024)
    return rng.choice((
        f"{name} ({age}) lives at {number} Mill Lane, {city}, and works for {company}.",
        f"Since {year}, {name} has worked at {company} in {city}. {cap(pron)} turned {age} "
        "this spring.",
        f"You'll find {name} on floor {number} of the {company} office in {city}; {pron} is {age}.",
        f"{name}, {age}, has been {role} at {company} since {year} and lives in {city}.",
        f"Call {name} at {company} ({city}) on extension {number}{rng.randint(10, 99)}; "
        f"{pron} is {age}.",
    ))


def contact_record(name: str, age: int, city: str, company: str) -> str:
    """The target: the JSON object of the fields, in a fixed key order."""
    return json.dumps({"name": name, "age": age, "city": city, "company": company},
                      ensure_ascii=False)


def contacts_records(rng: Random) -> Iterator[Record]:
    while True:
        kind = rng.choice(CONTACT_KINDS)
        name, pron = _person(rng)
        age, city, company = rng.randint(19, 74), rng.choice(_CITIES), rng.choice(_COMPANIES)
        text = _message(rng, kind, name, pron, age, city, company)
        yield text, contact_record(name, age, city, company), kind
