"""News sentences for the built-in ``topic`` task: vocabularies and sentence shapes.

Half the sentences ("cross") borrow words from another topic, so that keyword matching is not
enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from random import Random

from evo.tasks.generate_common import Record, cap

_TEAMS = ("the Riverton Hawks", "the Eastport Mariners", "the Bellhaven Rovers",
          "Castlebrook United", "the Northgate Wolves", "the Saltmarsh Comets", "Kingsford City",
          "the Pine Valley Bears")
_ATHLETES = ("sprinter Lena Okafor", "tennis player Ravi Desai", "swimmer Hana Kobayashi",
             "cyclist Pieter Jansen", "boxer Marcus Hale", "skier Freya Lindqvist")
_RECORD_SETTERS = ("sprinter Lena Okafor", "swimmer Hana Kobayashi", "cyclist Pieter Jansen",
                   "skier Freya Lindqvist")
_SIGNINGS = ("striker Tomas Varga", "goalkeeper Ines Moreau", "midfielder Joel Asante",
             "defender Kasia Nowak")
_EVENTS = ("the cup final", "the season opener", "the national championship",
           "the regional derby", "the semi-final", "the league decider")
_DRUGMAKERS = ("Pellucid Pharma", "Corvane Biotech", "Ostara Health")
_COMPANIES = ("Norvale Foods", "Brightline Airways", "Qentra Software", "Harlow & Finch",
              "Meridian Steel", "Cobalt Bank", "Sunmark Retail", "Altavo Motors")
_SCIENTISTS = ("researchers at Eastfield University", "a team at the Halden Institute",
               "scientists at the national museum", "marine biologists",
               "a group of physicists", "geologists working in the north")
_POLITICIANS = ("the prime minister", "the opposition leader", "Senator Clara Whitmore",
                "the finance minister", "the mayor of Riverton", "Governor Alan Brooks",
                "the foreign minister", "the health secretary")
_POLICIES = ("raise the minimum wage", "lower the voting age", "expand public transport",
             "cap rents in large cities", "reform the pension system", "ban single-use plastics",
             "hire more teachers", "tighten border checks")
_REGIONS = ("the northern provinces", "the coastal region", "the capital", "the western states",
            "the river valley")
_DAYS = ("Sunday", "Saturday", "Tuesday night", "Friday")
_CREATURES = ("frog", "beetle", "deep-sea fish", "orchid", "bat", "lizard")
_ASTRO = ("galaxy", "comet", "star cluster", "gas cloud")


def _topic_sentence(rng: Random, label: str) -> tuple[str, str]:
    """A news-like sentence about ``label``; kind "cross" borrows cues from another topic."""
    c = rng.choice
    n = rng.randint(2, 9)
    m = rng.choice((12, 40, 85, 150, 300, 620))
    p = rng.randint(2, 19)
    options: dict[str, Sequence[Callable[[], str]]]
    if label == "sports":
        t1, t2 = rng.sample(_TEAMS, 2)
        a1 = c(_ATHLETES)
        a2 = c(_SIGNINGS)
        years = c(("two", "three", "four", "five"))
        options = {
            "plain": (
                lambda: f"{cap(t1)} beat {t2} {n}-{rng.randint(0, n - 1)} in {c(_EVENTS)} on "
                f"{c(_DAYS)}.",
                lambda: f"{cap(a1)} won gold at the world championships.",
                lambda: f"{cap(t1)} sacked their head coach after {n} straight defeats.",
                lambda: f"{cap(c(_ATHLETES + _SIGNINGS))} will miss {c(_EVENTS)} with a knee "
                "injury.",
                lambda: f"{cap(t1)} clinched the league title with {n} games to spare.",
            ),
            "cross": (
                lambda: f"{cap(t1)} signed {a2} on a {years}-year contract worth a reported "
                f"${m} million.",
                lambda: f"The president watched from the stands as {t1} won {c(_EVENTS)} "
                "on penalties.",
                lambda: f"{cap(c(_RECORD_SETTERS))} broke the national record in humid "
                "conditions that doctors had warned about.",
                lambda: f"Ticket sales were slow, but {t1} still drew level with {t2} in "
                "stoppage time.",
                lambda: f"Lawmakers cheered from the stands as {t1} beat {t2} in {c(_EVENTS)}.",
                lambda: f"Despite the club's mounting debts, {t1} won {c(_EVENTS)} against {t2}.",
                lambda: f"{cap(a1)} thanked the team's sleep scientists after winning the "
                "world title.",
            ),
        }
    elif label == "business":
        co1, co2 = rng.sample(_COMPANIES, 2)
        options = {
            "plain": (
                lambda: f"{co1} shares jumped {p}% after quarterly profits beat forecasts.",
                lambda: f"{co1} agreed to buy {co2} for ${n} billion.",
                lambda: f"{co1} will cut {m} jobs as sales slow in {c(_REGIONS)}.",
                lambda: f"Oil prices fell for a {c(('third', 'fourth', 'fifth'))} day as supply "
                "worries eased.",
                lambda: f"{co1} opened {n} new stores, betting on younger shoppers.",
            ),
            "cross": (
                lambda: f"The owners of {c(_TEAMS)} sold the club to an investment fund for "
                f"${m} million.",
                lambda: f"{c(_DRUGMAKERS)} shares fell {p}% after its new drug failed a "
                "late-stage trial.",
                lambda: f"{co1} said the new tariffs will add ${m} million to its costs "
                "this year.",
                lambda: f"The central bank held interest rates at {n}%, and {co1} stock "
                "barely moved.",
                lambda: f"{cap(c(_TEAMS))} reported a loss of ${m} million as ticket sales fell "
                "for a third season.",
                lambda: f"{co1} shares slid {p}% after the election result surprised investors.",
                lambda: f"{co1} will spend ${m} million on a laboratory to develop cheaper "
                "solar panels.",
            ),
        }
    elif label == "science":
        s1 = c(_SCIENTISTS)
        options = {
            "plain": (
                lambda: f"{cap(s1)} described a new species of {c(_CREATURES)} found in "
                f"{c(_REGIONS)}.",
                lambda: f"A new telescope captured sharp images of a distant {c(_ASTRO)}.",
                lambda: f"A probe sent back its first close-up photos of the surface of "
                f"{c(('Mars', 'Venus', 'a moon of Jupiter'))}.",
                lambda: f"{cap(s1)} measured the speed of the glacier's melt using "
                "buried sensors.",
                lambda: f"Fossils dug up in {c(_REGIONS)} suggest giant reptiles lived "
                f"there {m} million years ago.",
            ),
            "cross": (
                lambda: f"A study of {m} marathon runners found their hearts adapt to long "
                "races within months.",
                lambda: f"Engineers built a battery that charges in {n} minutes, though it is "
                "years away from stores.",
                lambda: f"{cap(s1)} told lawmakers that sea ice near {c(_REGIONS)} is melting "
                "faster than models predicted.",
                lambda: f"Data from {c(_TEAMS)}'s training camp helped {s1} show how sleep "
                "affects reaction time.",
                lambda: f"{cap(s1)} fitted sensors to players of {c(_TEAMS)} to study how head "
                "injuries happen.",
                lambda: f"A study paid for by {c(_COMPANIES)} found that bees avoid fields "
                "sprayed with a common pesticide.",
                lambda: "Astronomers said the comet will be easy to see on election night.",
            ),
        }
    else:
        pol = c(_POLITICIANS)
        options = {
            "plain": (
                lambda: f"The senate passed a bill to {c(_POLICIES)} by {50 + n} votes to "
                f"{50 - n}.",
                lambda: f"{cap(pol)} resigned after weeks of pressure over leaked messages.",
                lambda: f"Voters in {c(_REGIONS)} go to the polls on {c(_DAYS)} in a close "
                "election.",
                lambda: f"{cap(pol)} promised to {c(_POLICIES)} if the party wins again.",
                lambda: "The two parties failed to agree on a budget, raising the risk of a "
                "government shutdown.",
            ),
            "cross": (
                lambda: f"The city council voted to spend ${m} million of public money on a new "
                f"stadium for {c(_TEAMS)}.",
                lambda: f"{cap(pol)} pledged to cut taxes for small businesses ahead of "
                "the vote.",
                lambda: f"Lawmakers voted to cut the space agency's budget by {p}%.",
                lambda: f"{cap(pol)} faced questions in parliament about donations from "
                f"{c(_COMPANIES)}.",
                lambda: f"Parliament debated a ban on betting adverts during {c(_TEAMS)} "
                "matches.",
                lambda: f"{cap(pol)} proposed new rules on animal testing in university "
                "laboratories.",
                lambda: f"{cap(pol)} blamed {c(_COMPANIES)} for rising fuel prices during a "
                "heated debate.",
            ),
        }
    kind = "cross" if rng.random() < 0.5 else "plain"
    return rng.choice(options[kind])(), kind


TOPICS = ("sports", "business", "science", "politics")


def topic_records(rng: Random) -> Iterator[Record]:
    while True:
        label = rng.choice(TOPICS)
        text, kind = _topic_sentence(rng, label)
        yield text, label, kind
