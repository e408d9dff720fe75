"""Paragraphs for the built-in ``summary`` task, each with a one-sentence reference summary.

A paragraph of three or four sentences has a lead (who, what, where, when), a number, a
consequence and one sentence of side detail that a good summary leaves out, often with a number
of its own to tempt a careless one. Five kinds: a product recall, a local event, a service outage,
a sports result and a customer's support message. The reference is written from the same drawn
facts as the paragraph, so every name and number it states is in the paragraph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random

from evo.tasks.generate_common import Record, cap

_TOWNS = ("Riverton", "Eastport", "Bellhaven", "Castlebrook", "Northgate", "Saltmarsh",
          "Kingsford", "Pine Valley")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_YEARS = (2009, 2014, 2017, 2019, 2021)

Paragraph = tuple[list[str], str, str]  # (core sentences, side detail, reference)


def _where(rng: Random) -> str:
    first, second = rng.sample(_TOWNS, 2)
    return first if rng.random() < 0.5 else f"{first} and {second}"


_RECALLS = (  # maker, product (plural), the fault
    ("Kestrel Toys", "wooden pull-along trains", "their small wheels can come off"),
    ("Kestrel Toys", "plush rabbits", "their button eyes can come loose"),
    ("Norvale Foods", "jars of nut-free spread", "some jars contain traces of peanuts"),
    ("Norvale Foods", "bags of frozen spinach", "some bags may hold pieces of plastic"),
    ("Tidewell Electronics", "portable power banks", "their batteries can overheat"),
    ("Tidewell Electronics", "bedside lamps", "a wiring fault can give an electric shock"),
    ("Harlow Home", "folding high chairs", "a hinge can give way"),
    ("Quillon Cycles", "children's bike helmets", "the chin strap buckle can snap"),
)
_REMEDIES = (  # what buyers are told, as a sentence and as a clause of the reference
    ("Buyers can return them to any store for a full refund.",
     "buyers can return them for a full refund"),
    ("The company will send a free replacement to anyone who asks.",
     "it will replace them for free"),
    ("Customers are told to stop using them at once and claim a refund online.",
     "customers should stop using them and claim a refund"),
)


def _recall(rng: Random) -> Paragraph:
    maker, products, fault = rng.choice(_RECALLS)
    units = f"{rng.randint(3, 90) * 500:,}"
    where, day = _where(rng), rng.choice(_DAYS)
    remedy, remedy_clause = rng.choice(_REMEDIES)
    side = rng.choice((
        f"{maker} was founded in {rng.choice(_YEARS) - 40} and has a factory in "
        f"{rng.choice(_TOWNS)}.",
        f"The {products} were first sold in a spring catalogue in {rng.choice(_YEARS)}.",
        "The product page still shows a photo of a smiling family.",
        "A spokesperson said safety has always come first at the company.",
    ))
    if rng.random() < 0.5:
        core = [f"{maker} is recalling {units} {products} sold in {where} because {fault}.",
                remedy]
    else:
        core = [f"{maker} announced a recall of its {products} on {day}, saying {fault}.",
                f"About {units} of them were sold in {where}.", remedy]
    ref = (f"{maker} is recalling {units} {products} sold in {where} because {fault}; "
           f"{remedy_clause}.")
    return core, side, ref


_ORGANIZERS = ("the {town} Library", "the {town} Rotary Club", "{town} Primary School",
               "the {town} Lifeboat Trust", "the {town} Allotment Society")
_EVENTS = ("charity fun run", "book fair", "food festival", "summer fair", "open-air concert")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
_PLACES = ("Victoria Park", "the town square", "the harbour front", "the old market hall")
_CAUSES = ("a new roof for the town hall", "the children's ward at Kingsford Hospital",
           "repairs to the lifeboat station", "new books for the school library",
           "a minibus for the youth club")


def _event(rng: Random) -> Paragraph:
    town, event, place = rng.choice(_TOWNS), rng.choice(_EVENTS), rng.choice(_PLACES)
    org = rng.choice(_ORGANIZERS).format(town=town)
    day, cause = rng.choice(_DAYS[4:]), rng.choice(_CAUSES)
    raised = f"{rng.randint(12, 150) * 100:,}"
    visitors = f"{rng.randint(3, 40) * 100:,}"
    side = rng.choice((
        "A brass band played through the afternoon.",
        f"Volunteers baked more than {rng.randint(60, 300)} cakes for the stalls.",
        "The rain held off until the last hour.",
        f"The first {event} in {town} took place in {rng.choice(_YEARS)}.",
    ))
    lead = rng.choice((
        f"{cap(org)} held {_a(event)} at {place} in {town} on {day}.",
        f"About {visitors} people came to {_a(event)} run by {org} at {place} in {town} on {day}.",
    ))
    core = [lead, f"The {event} raised ${raised} for {cause}.",
            rng.choice(("Organisers now hope to make it a yearly event.",
                        "A second one is already planned for the autumn."))]
    ref = f"{cap(org)}'s {event} at {place} in {town} on {day} raised ${raised} for {cause}."
    return core, side, ref


_SERVICES = (("Cobalt Bank", "mobile banking app"), ("Vellis Telecom", "mobile network"),
             ("Qentra Software", "email service"), ("Larkspur Water", "account website"),
             ("Sunmark Retail", "card payment system"), ("Halden Energy", "billing website"))
_FAULTS = ("a failed software update", "a damaged fibre cable",
           "a power cut at a data centre", "an overloaded server")
_AFTERMATH = (("Customers who missed payments will not be charged late fees.",
               "late fees will be waived"),
              ("Affected accounts will be credited with a week of free service.",
               "accounts will get a week of free service"),
              ("The company has ordered an independent review of the failure.",
               "an independent review has been ordered"))


def _outage(rng: Random) -> Paragraph:
    company, service = rng.choice(_SERVICES)
    fault, hours, day = rng.choice(_FAULTS), rng.randint(2, 9), rng.choice(_DAYS)
    users, where = f"{rng.randint(8, 240) * 1000:,}", _where(rng)
    after, after_clause = rng.choice(_AFTERMATH)
    side = rng.choice((
        "A spokesperson apologised in a short video posted online.",
        f"The company moved its head office to {rng.choice(_TOWNS)} {rng.randint(2, 6)} years "
        "ago.",
        f"Its last major outage was in {rng.choice(_YEARS)}.",
        "Complaints filled social media within minutes.",
    ))
    if rng.random() < 0.5:
        lead = (f"{company}'s {service} went down for {hours} hours on {day}, leaving about "
                f"{users} customers in {where} unable to use it.")
        core = [lead, f"The company blamed {fault}.", after]
    else:
        core = [f"Customers of {company} in {where} could not use its {service} for {hours} "
                f"hours on {day} after {fault}.",
                f"The company said about {users} customers were affected.", after]
    ref = (f"{cap(fault)} took down {company}'s {service} in {where} for {hours} hours on "
           f"{day}, affecting about {users} customers; {after_clause}.")
    return core, side, ref


_TEAMS = ("the Riverton Hawks", "the Eastport Mariners", "the Bellhaven Rovers",
          "Castlebrook United", "the Northgate Wolves", "Kingsford City")
_PLAYERS = ("Tomas Varga", "Ines Moreau", "Joel Asante", "Kasia Nowak", "Dario Russo",
            "Maya Lindgren")
_VENUES = ("Harbour Park", "Mill Lane", "the Kingsford Arena", "Station Road")
_STAKES = (  # the match, and what the win brings (a sentence, a clause of the reference)
    ("the cup semi-final", "The win sends them to the final next month.", "to reach the final"),
    ("the cup quarter-final", "They will play the semi-final away from home.",
     "to reach the semi-finals"),
    ("the league decider", "The result makes them league champions.", "to win the league"),
    ("the regional derby", "The win lifts them to second in the table.",
     "to move up to second in the table"),
)


def _sports(rng: Random) -> Paragraph:
    winner, loser = rng.sample(_TEAMS, 2)
    player, venue, day = rng.choice(_PLAYERS), rng.choice(_VENUES), rng.choice(_DAYS)
    match, stake, stake_clause = rng.choice(_STAKES)
    scored = rng.randint(2, 5)
    goals = rng.choice(("twice", "a hat-trick")) if scored >= 3 else "twice"
    side = rng.choice((
        f"Heavy rain delayed the kick-off by {rng.choice((10, 15, 20, 25))} minutes.",
        f"The crowd of {rng.randint(4, 30) * 1000:,} was the biggest at {venue} this season.",
        "The club's new kit went on sale the same morning.",
        f"The coach of {loser} said the referee had a difficult afternoon.",
    ))
    against = rng.randint(0, min(scored - 1, 2))
    lead = rng.choice((
        f"{cap(winner)} beat {loser} {scored}-{against} in {match} at {venue} on {day}.",
        f"On {day}, {winner} won {match} against {loser} {scored}-{against} at {venue}.",
    ))
    core = [lead, f"{player} scored {goals}, including the winner in the "
            f"{rng.randint(50, 89)}th minute.", stake]
    ref = (f"{cap(winner)} beat {loser} {scored}-{against} in {match} on {day} {stake_clause}, "
           f"with {player} scoring {goals}.")
    return core, side, ref


_CUSTOMERS = ("Priya Nair", "Daniel Osei", "Marta Kowalski", "Hugo Lambert", "Aiko Tanaka",
              "Sean Byrne", "Elena Petrova", "Tariq Malik")
_SHOPS = {  # shop -> what it sells
    "Harlow Home": ("dining chairs", "wall shelves", "picture frames"),
    "Sunmark Retail": ("coffee mugs", "bath towels", "storage boxes"),
    "Tidewell Electronics": ("desk lamps", "phone chargers", "headphones"),
    "Quillon Cycles": ("bike lights", "bike locks", "cycling gloves"),
}


def _support(rng: Random) -> Paragraph:
    customer, shop = rng.choice(_CUSTOMERS), rng.choice(tuple(_SHOPS))
    items = rng.choice(_SHOPS[shop])
    town, day, count = rng.choice(_TOWNS), rng.choice(_DAYS), rng.randint(2, 8)
    side = rng.choice((
        f"The customer has shopped with {shop} for {rng.randint(2, 12)} years.",
        "The order was placed during a weekend sale.",
        "The message ends by praising the shop's friendly staff.",
        "The courier left the parcel with a neighbour.",
    ))
    lead = (f"{customer} wrote to {shop} on {day} about an order of {count} {items} "
            f"delivered to {town}.")
    problem = rng.choice(("broken", "late", "charged"))
    if problem == "broken":
        broken = rng.randint(1, count - 1)
        wanted = "a replacement" if broken == 1 else "replacements"
        core = [lead, f"Of the {count} {items}, {broken} arrived broken.",
                f"The customer asks for {wanted}."]
        ref = (f"{customer} reports that {broken} of the {count} {items} ordered from {shop} "
               f"arrived broken in {town} and asks for {wanted}.")
    elif problem == "late":
        late = rng.randint(3, 14)
        core = [lead, f"The parcel came {late} days later than promised.",
                "The customer asks for the delivery fee to be refunded."]
        ref = (f"{customer} reports that an order of {count} {items} from {shop} reached "
               f"{town} {late} days late and asks for the delivery fee back.")
    else:
        price = rng.randint(15, 240)
        core = [lead, f"The card was charged twice, ${price} each time.",
                "The customer asks for the second charge to be refunded."]
        ref = (f"{customer} reports being charged ${price} twice for an order of {count} "
               f"{items} from {shop} and asks for one charge to be refunded.")
    return core, side, ref


_KINDS: dict[str, Callable[[Random], Paragraph]] = {
    "recall": _recall, "event": _event, "outage": _outage, "sports": _sports,
    "support": _support,
}
SUMMARY_KINDS = tuple(_KINDS)


def summary_records(rng: Random) -> Iterator[Record]:
    while True:
        kind = rng.choice(SUMMARY_KINDS)
        core, side, reference = _KINDS[kind](rng)
        core.insert(rng.randint(1, len(core)), side)  # the side detail never leads
        yield " ".join(core), reference, kind
