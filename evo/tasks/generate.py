"""Writes the built-in task data: ``python -m evo.tasks.generate [--out DIR] [--check]``.

Every example is composed from the small vocabularies below with a seeded ``random.Random``, so
the files under ``evo/tasks/data/`` can be rebuilt byte for byte. The sentences are meant to trip
up keyword matching: sentiment reviews turn halfway, negate or praise sarcastically, and topic
sentences borrow words from the other topics.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random

SEED = 2024
SPLITS: dict[str, int] = {"train": 64, "dev": 100, "test": 200}
DATA_DIR = Path(__file__).resolve().parent / "data"

Record = tuple[str, str, str]  # (input, target, kind)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- sentiment ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Aspect:
    noun: str
    good: tuple[str, ...]
    bad: tuple[str, ...]


@dataclass(frozen=True)
class _Domain:
    items: tuple[str, ...]
    aspects: tuple[_Aspect, ...]
    good_verdicts: tuple[str, ...]
    bad_verdicts: tuple[str, ...]


def _a(noun: str, good: str, bad: str) -> _Aspect:
    return _Aspect(noun, tuple(good.split("|")), tuple(bad.split("|")))


_DOMAINS: tuple[_Domain, ...] = (
    _Domain(
        items=("this film", "the movie", "this sequel", "the new thriller", "this comedy",
               "the documentary"),
        aspects=(
            _a("the plot", "clever|gripping|easy to follow", "dull|predictable|hard to follow"),
            _a("the acting", "convincing|superb|natural", "wooden|over the top|flat"),
            _a("the soundtrack", "lovely|memorable", "forgettable|far too loud"),
            _a("the pacing", "tight|just right", "sluggish|uneven"),
            _a("the dialogue", "sharp|witty", "clumsy|stiff"),
            _a("the ending", "moving|satisfying", "rushed|confusing"),
            _a("the first hour", "engaging|fun", "slow|a slog"),
            _a("the camera work", "gorgeous|striking", "murky|shaky"),
        ),
        good_verdicts=("I'd happily watch it again", "the whole audience clapped at the end",
                       "it stayed with me for days", "it's a pleasant way to spend an evening"),
        bad_verdicts=("I nearly walked out", "I kept checking my watch",
                      "I won't be watching it again", "I forgot it by the next morning"),
    ),
    _Domain(
        items=("this place", "the restaurant", "this little cafe", "the new bistro",
               "the diner on the corner", "this pizza spot"),
        aspects=(
            _a("the soup", "hot and hearty|rich", "lukewarm|watery"),
            _a("the service", "friendly|quick|attentive", "slow|rude|careless"),
            _a("the pasta", "perfectly cooked|fresh", "soggy|bland"),
            _a("the dessert", "delightful|worth saving room for", "stale|far too sweet"),
            _a("the coffee", "strong and smooth|excellent", "bitter|burnt"),
            _a("the decor", "cozy|charming", "gloomy|shabby"),
            _a("the portion size", "generous|fair", "tiny|stingy"),
            _a("the wait for a table", "short|reasonable", "endless|ridiculous"),
        ),
        good_verdicts=("we'll definitely be back", "I'd eat there every week",
                       "it's my new favorite spot", "the bill felt fair for what we got"),
        bad_verdicts=("we won't be going back", "I left hungry and annoyed",
                      "the bill was an insult", "I'd rather cook at home"),
    ),
    _Domain(
        items=("this blender", "these headphones", "this backpack", "the kettle",
               "this desk lamp", "the phone case", "this vacuum", "the rain jacket"),
        aspects=(
            _a("the build quality", "solid|sturdy", "flimsy|cheap"),
            _a("the setup", "painless|quick", "confusing|a headache"),
            _a("the design", "sleek|thoughtful", "clunky|awkward"),
            _a("the price", "fair|a bargain", "steep|too high"),
            _a("the manual", "clear|helpful", "useless|vague"),
            _a("the delivery", "fast|on time", "late|a mess"),
            _a("customer support", "patient|helpful", "unhelpful|impossible to reach"),
            _a("the material", "soft|tough", "scratchy|thin"),
        ),
        good_verdicts=("I'd buy it again", "I use it every single day",
                       "I've already ordered one for my sister", "it does exactly what I need"),
        bad_verdicts=("it's going back to the store", "it broke within a week",
                      "I'm returning it tomorrow", "I wish I had bought a different one"),
    ),
)

_GOOD_VERDICTS = (
    "I'd recommend it to anyone", "it was worth every penny", "I'm glad I tried it",
    "I came away happy", "it beat my expectations", "I'd give it five stars",
    "overall I loved it", "it won me over in the end", "I have no regrets",
)
_BAD_VERDICTS = (
    "I wouldn't recommend it", "it wasn't worth the money", "I regret it",
    "I came away disappointed", "it fell short of my expectations", "I'd give it two stars at most",
    "overall it was a letdown", "I won't bother again", "I want my money back",
)
_MILD_GOOD = ("pretty", "fairly", "quite", "mostly")
_MILD_BAD = ("a bit", "somewhat", "rather", "a little")


def _describe(rng: Random, aspect: _Aspect, good: bool) -> str:
    word = rng.choice(aspect.good if good else aspect.bad)
    if " " not in word and rng.random() < 0.4:  # softened wording makes the cue weaker
        return f"{rng.choice(_MILD_GOOD if good else _MILD_BAD)} {word}"
    return word


def _verdict(rng: Random, domain: _Domain, good: bool) -> str:
    own = domain.good_verdicts if good else domain.bad_verdicts
    shared = _GOOD_VERDICTS if good else _BAD_VERDICTS
    return rng.choice(own if rng.random() < 0.4 else shared)


def _review(rng: Random, good: bool) -> tuple[str, str]:
    """One review with the given overall polarity, and the kind of construction used."""
    dom = rng.choice(_DOMAINS)
    a1, a2 = rng.sample(dom.aspects, 2)
    item = rng.choice(dom.items)
    kind = rng.choice(("plain", "turn", "turn", "mixed", "negation", "negation", "irony",
                       "expectation"))
    same = _describe(rng, a1, good)
    other = _describe(rng, a1, not good)
    verdict = _verdict(rng, dom, good)
    if kind == "plain":
        text = rng.choice((
            f"{_cap(a1.noun)} was {same}, and {a2.noun} was {_describe(rng, a2, good)}.",
            f"{_cap(a1.noun)} was {same}, and {verdict}.",
            f"{_cap(item)}: {a1.noun} was {same}. {_cap(verdict)}.",
        ))
    elif kind == "turn":  # the clause after the turn carries the verdict
        text = rng.choice((
            f"{_cap(a1.noun)} was {other}, but {verdict}.",
            f"{_cap(a1.noun)} was {other}, but {a2.noun} was {_describe(rng, a2, good)} "
            f"and {verdict}.",
            f"Although {a1.noun} was {other}, {verdict}.",
            f"Sure, {a1.noun} was {other}. Even so, {verdict}.",
        ))
    elif kind == "mixed":  # praise and complaint, then a closing verdict decides
        text = rng.choice((
            f"{_cap(a1.noun)} was {same}, though {a2.noun} was {_describe(rng, a2, not good)}. "
            f"{_cap(verdict)}.",
            f"{_cap(a2.noun)} was {_describe(rng, a2, not good)} and {a1.noun} was {same}; "
            f"all in all, {verdict}.",
        ))
    elif kind == "negation":
        pos_word, neg_word = rng.choice(a1.good), rng.choice(a1.bad)
        if good:
            text = rng.choice((
                f"{_cap(a1.noun)} was not bad at all, and {verdict}.",
                f"I honestly have no complaints about {a1.noun}.",
                f"I couldn't find a single fault with {item}.",
                f"{_cap(a1.noun)} wasn't {neg_word} in the slightest.",
                f"Nothing about {a1.noun} was {neg_word}, and {verdict}.",
                f"I can't say I was let down by {item}.",
            ))
        else:
            text = rng.choice((
                f"{_cap(a1.noun)} was not {pos_word}, and {verdict}.",
                f"I can't say {a1.noun} was {pos_word}.",
                f"I wouldn't call {a1.noun} {pos_word}.",
                f"{_cap(a1.noun)} was hardly {pos_word}.",
                f"Nothing about {item} felt {pos_word} to me.",
                f"I can't say I enjoyed {item}.",
            ))
    elif kind == "irony":
        bad1, bad2 = _describe(rng, a1, False), _describe(rng, a2, False)
        if good:  # understatement rather than sarcasm: complaints that are not complaints
            text = rng.choice((
                f"My only complaint about {item} is that I didn't find it sooner.",
                f"The worst thing I can say is that {a1.noun} was {_describe(rng, a1, True)}.",
                f"I tried hard to find something wrong with {a1.noun} and failed.",
                f"Annoyingly, {item} left me with nothing to grumble about.",
            ))
        else:
            text = rng.choice((
                f"Oh great, {a1.noun} was {bad1}. Exactly what I was hoping for.",
                f"Wonderful. {_cap(a1.noun)} was {bad1} again.",
                f"What a treat: {a1.noun} was {bad1} and {a2.noun} was {bad2}.",
                f"Ten out of ten for {a1.noun}, if you enjoy things that are {bad1}.",
                f"Just perfect, {a1.noun} was {bad1}. Truly a highlight.",
            ))
    else:  # expectation: the reviewer expected the opposite
        if good:
            text = rng.choice((
                f"I expected to hate {item}, but {verdict}.",
                f"My friends warned me about {item}, yet {verdict}.",
                f"I went in with low hopes, and {item} surprised me.",
                f"I almost skipped {item}, which would have been a mistake.",
            ))
        else:
            text = rng.choice((
                f"I had high hopes for {item}, but {verdict}.",
                f"Everyone raves about {item}; I honestly don't see why.",
                f"The reviews promised great things, but {a1.noun} was {other}.",
                f"I really wanted to like {item}, but {verdict}.",
            ))
    return text, kind


def _sentiment(rng: Random) -> Iterator[Record]:
    while True:
        good = rng.random() < 0.5
        text, kind = _review(rng, good)
        yield text, "positive" if good else "negative", kind


# --- topic -------------------------------------------------------------------------------------

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
                lambda: f"{_cap(t1)} beat {t2} {n}-{rng.randint(0, n - 1)} in {c(_EVENTS)} on "
                f"{c(_DAYS)}.",
                lambda: f"{_cap(a1)} won gold at the world championships.",
                lambda: f"{_cap(t1)} sacked their head coach after {n} straight defeats.",
                lambda: f"{_cap(c(_ATHLETES + _SIGNINGS))} will miss {c(_EVENTS)} with a knee "
                "injury.",
                lambda: f"{_cap(t1)} clinched the league title with {n} games to spare.",
            ),
            "cross": (
                lambda: f"{_cap(t1)} signed {a2} on a {years}-year contract worth a reported "
                f"${m} million.",
                lambda: f"The president watched from the stands as {t1} won {c(_EVENTS)} "
                "on penalties.",
                lambda: f"{_cap(c(_RECORD_SETTERS))} broke the national record in humid "
                "conditions that doctors had warned about.",
                lambda: f"Ticket sales were slow, but {t1} still drew level with {t2} in "
                "stoppage time.",
                lambda: f"Lawmakers cheered from the stands as {t1} beat {t2} in {c(_EVENTS)}.",
                lambda: f"Despite the club's mounting debts, {t1} won {c(_EVENTS)} against {t2}.",
                lambda: f"{_cap(a1)} thanked the team's sleep scientists after winning the "
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
                lambda: f"{_cap(c(_TEAMS))} reported a loss of ${m} million as ticket sales fell "
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
                lambda: f"{_cap(s1)} described a new species of {c(_CREATURES)} found in "
                f"{c(_REGIONS)}.",
                lambda: f"A new telescope captured sharp images of a distant {c(_ASTRO)}.",
                lambda: f"A probe sent back its first close-up photos of the surface of "
                f"{c(('Mars', 'Venus', 'a moon of Jupiter'))}.",
                lambda: f"{_cap(s1)} measured the speed of the glacier's melt using "
                "buried sensors.",
                lambda: f"Fossils dug up in {c(_REGIONS)} suggest giant reptiles lived "
                f"there {m} million years ago.",
            ),
            "cross": (
                lambda: f"A study of {m} marathon runners found their hearts adapt to long "
                "races within months.",
                lambda: f"Engineers built a battery that charges in {n} minutes, though it is "
                "years away from stores.",
                lambda: f"{_cap(s1)} told lawmakers that sea ice near {c(_REGIONS)} is melting "
                "faster than models predicted.",
                lambda: f"Data from {c(_TEAMS)}'s training camp helped {s1} show how sleep "
                "affects reaction time.",
                lambda: f"{_cap(s1)} fitted sensors to players of {c(_TEAMS)} to study how head "
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
                lambda: f"{_cap(pol)} resigned after weeks of pressure over leaked messages.",
                lambda: f"Voters in {c(_REGIONS)} go to the polls on {c(_DAYS)} in a close "
                "election.",
                lambda: f"{_cap(pol)} promised to {c(_POLICIES)} if the party wins again.",
                lambda: "The two parties failed to agree on a budget, raising the risk of a "
                "government shutdown.",
            ),
            "cross": (
                lambda: f"The city council voted to spend ${m} million of public money on a new "
                f"stadium for {c(_TEAMS)}.",
                lambda: f"{_cap(pol)} pledged to cut taxes for small businesses ahead of "
                "the vote.",
                lambda: f"Lawmakers voted to cut the space agency's budget by {p}%.",
                lambda: f"{_cap(pol)} faced questions in parliament about donations from "
                f"{c(_COMPANIES)}.",
                lambda: f"Parliament debated a ban on betting adverts during {c(_TEAMS)} "
                "matches.",
                lambda: f"{_cap(pol)} proposed new rules on animal testing in university "
                "laboratories.",
                lambda: f"{_cap(pol)} blamed {c(_COMPANIES)} for rising fuel prices during a "
                "heated debate.",
            ),
        }
    kind = "cross" if rng.random() < 0.5 else "plain"
    return rng.choice(options[kind])(), kind


_TOPICS = ("sports", "business", "science", "politics")


def _topic(rng: Random) -> Iterator[Record]:
    while True:
        label = rng.choice(_TOPICS)
        text, kind = _topic_sentence(rng, label)
        yield text, label, kind


# --- arithmetic --------------------------------------------------------------------------------

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


_ARITH_KINDS = ("add", "add", "add", "subtract", "subtract", "multiply", "two_step")


def _arithmetic(rng: Random) -> Iterator[Record]:
    while True:
        kind = rng.choice(_ARITH_KINDS)
        text, answer = _problem(rng, kind)
        yield text, str(answer), kind


# --- assembly ----------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[Random], Iterator[Record]]] = {
    "sentiment": _sentiment,
    "topic": _topic,
    "arithmetic": _arithmetic,
}
# Classification data is balanced per split on the target; arithmetic is stratified on the kind.
_STRATIFY_ON_TARGET = {"sentiment": True, "topic": True, "arithmetic": False}


def _shares(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, ties by key order)."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    rest = sorted(weights, key=lambda k: -(exact[k] - counts[k]))
    for k in rest[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def build(name: str, seed: int = SEED) -> dict[str, list[dict[str, str]]]:
    """The records of each split of one task, deterministic in ``(name, seed)``."""
    rng = Random(seed + zlib.crc32(name.encode()))
    on_target = _STRATIFY_ON_TARGET[name]
    pools: dict[str, list[Record]] = {}
    seen: set[str] = set()
    weights: dict[str, int] = {}
    if name == "arithmetic":
        for kind in _ARITH_KINDS:
            weights[kind] = weights.get(kind, 0) + 1
    else:
        weights = dict.fromkeys(_TOPICS if name == "topic" else ("positive", "negative"), 1)
    wanted = {s: _shares(n, weights) for s, n in SPLITS.items()}
    need = {k: sum(w[k] for w in wanted.values()) for k in weights}
    stream = GENERATORS[name](rng)
    for _ in range(200_000):
        if all(len(pools.get(k, [])) >= need[k] for k in need):
            break
        text, target, kind = next(stream)
        key = target if on_target else kind
        if text in seen or len(pools.setdefault(key, [])) >= need[key]:
            continue
        seen.add(text)  # unique inputs across all splits keep train, dev and test disjoint
        pools[key].append((text, target, kind))
    else:
        raise RuntimeError(f"{name}: vocabulary too small for the requested split sizes")
    out: dict[str, list[dict[str, str]]] = {}
    for split, counts in wanted.items():
        rows: list[Record] = []
        for key, count in counts.items():
            rows.extend(pools[key][:count])
            pools[key] = pools[key][count:]
        rng.shuffle(rows)
        out[split] = [
            {"id": f"{name}-{split}-{i:03d}", "input": text, "target": target, "kind": kind}
            for i, (text, target, kind) in enumerate(rows)
        ]
    return out


def render(records: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def file_name(name: str, split: str) -> str:
    return f"{name}.{split}.jsonl"


def write_all(out_dir: Path, seed: int = SEED) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in GENERATORS:
        for split, records in build(name, seed).items():
            path = out_dir / file_name(name, split)
            path.write_bytes(render(records))
            written.append(path)
    return written


def stale_files(out_dir: Path, seed: int = SEED) -> list[Path]:
    """Files under ``out_dir`` that differ from what this generator writes (or are missing)."""
    stale = []
    for name in GENERATORS:
        for split, records in build(name, seed).items():
            path = out_dir / file_name(name, split)
            if not path.is_file() or path.read_bytes() != render(records):
                stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the built-in task data files.")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out, args.seed)
        for path in stale:
            print(f"out of date: {path}")
        return 1 if stale else 0
    for path in write_all(args.out, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
