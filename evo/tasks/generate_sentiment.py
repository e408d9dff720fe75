"""Sentiment reviews for the built-in ``sentiment`` task: vocabularies and sentence shapes.

Reviews turn halfway, negate or praise sarcastically, so that keyword matching is not enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from random import Random

from evo.tasks.generate_common import Record, cap


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
            f"{cap(a1.noun)} was {same}, and {a2.noun} was {_describe(rng, a2, good)}.",
            f"{cap(a1.noun)} was {same}, and {verdict}.",
            f"{cap(item)}: {a1.noun} was {same}. {cap(verdict)}.",
        ))
    elif kind == "turn":  # the clause after the turn carries the verdict
        text = rng.choice((
            f"{cap(a1.noun)} was {other}, but {verdict}.",
            f"{cap(a1.noun)} was {other}, but {a2.noun} was {_describe(rng, a2, good)} "
            f"and {verdict}.",
            f"Although {a1.noun} was {other}, {verdict}.",
            f"Sure, {a1.noun} was {other}. Even so, {verdict}.",
        ))
    elif kind == "mixed":  # praise and complaint, then a closing verdict decides
        text = rng.choice((
            f"{cap(a1.noun)} was {same}, though {a2.noun} was {_describe(rng, a2, not good)}. "
            f"{cap(verdict)}.",
            f"{cap(a2.noun)} was {_describe(rng, a2, not good)} and {a1.noun} was {same}; "
            f"all in all, {verdict}.",
        ))
    elif kind == "negation":
        pos_word, neg_word = rng.choice(a1.good), rng.choice(a1.bad)
        if good:
            text = rng.choice((
                f"{cap(a1.noun)} was not bad at all, and {verdict}.",
                f"I honestly have no complaints about {a1.noun}.",
                f"I couldn't find a single fault with {item}.",
                f"{cap(a1.noun)} wasn't {neg_word} in the slightest.",
                f"Nothing about {a1.noun} was {neg_word}, and {verdict}.",
                f"I can't say I was let down by {item}.",
            ))
        else:
            text = rng.choice((
                f"{cap(a1.noun)} was not {pos_word}, and {verdict}.",
                f"I can't say {a1.noun} was {pos_word}.",
                f"I wouldn't call {a1.noun} {pos_word}.",
                f"{cap(a1.noun)} was hardly {pos_word}.",
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
                f"Wonderful. {cap(a1.noun)} was {bad1} again.",
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


def sentiment_records(rng: Random) -> Iterator[Record]:
    while True:
        good = rng.random() < 0.5
        text, kind = _review(rng, good)
        yield text, "positive" if good else "negative", kind
