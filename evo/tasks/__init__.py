"""The built-in tasks: their definitions here, their data in ``data/`` (see ``generate.py``).

Each definition holds the fields of a ``TaskSpec`` except ``data``, which ``builtin_definition``
fills in with the bundled files. The seed prompts are plain instructions of the kind a user would
write first, deliberately uneven in quality so that optimization has room to improve on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "dev", "test")

CONTACT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string", "minLength": 1},
        "company": {"type": "string", "minLength": 1},
    },
    "required": ["name", "age", "city", "company"],
    "additionalProperties": False,
}

BUILTINS: dict[str, dict[str, Any]] = {
    "sentiment": {
        "description": "Positive or negative? Short product, film and restaurant reviews with "
        "turns, negation and irony.",
        "template": "{prompt}\n\nReview: {input}",
        "labels": ["positive", "negative"],
        "verbalizers": {"positive": "positive", "negative": "negative"},
        "metric": "label_accuracy",
        "max_answer_tokens": 16,
        "seed_prompts": [
            "Is the following review positive or negative?",
            "Classify the sentiment of this review. Answer with one word: positive or negative.",
            "What does the customer think?",
        ],
    },
    "topic": {
        "description": "Sports, business, science or politics? One-sentence news items, some "
        "borrowing words from another topic.",
        "template": "{prompt}\n\nNews: {input}",
        "labels": ["sports", "business", "science", "politics"],
        # Capitalized: a reply starts with a capital, and "sports" and "politics" in lower case
        # begin with sub-word pieces ("s", "pol") that score high for unrelated reasons.
        "verbalizers": {"sports": "Sports", "business": "Business", "science": "Science",
                        "politics": "Politics"},
        "metric": "label_accuracy",
        "max_answer_tokens": 16,
        "seed_prompts": [
            "Which topic is this news item about: sports, business, science or politics?",
            "What is this news item about?",
            "Is this about sports, business, science or politics?",
        ],
    },
    "arithmetic": {
        "description": "One- and two-step word problems with small whole numbers; the answer "
        "is a number.",
        "template": "{prompt}\n\nQuestion: {input}",
        "labels": None,
        "metric": "numeric",
        "max_answer_tokens": 64,
        "seed_prompts": [
            "Solve this math word problem.",
            "Answer the question with a single number.",
            "Think step by step, then write the final answer as a number.",
        ],
    },
    "summary": {
        "description": "One-sentence summaries of short news, incident and support paragraphs; a "
        "judge model scores them against a reference.",
        "template": "{prompt}\n\nText: {input}",
        "labels": None,
        "metric": "judge",
        "max_answer_tokens": 60,  # the references are 21-35 words
        "stop": ["\n\n"],  # one sentence needs no second paragraph
        "seed_prompts": [
            "Summarize the text in one sentence, keeping the names, places and numbers that "
            "matter and leaving out side details.",
            "Summarize this.",
            "What is this text about?",
        ],
        "rubric": {
            "criteria": [
                {"name": "faithfulness", "weight": 3, "scale": 5,
                 "description": "Every fact it states (names, places, days, numbers) is in the "
                 "text, unchanged; nothing is added."},
                {"name": "coverage", "weight": 2, "scale": 5,
                 "description": "It gives the key facts of the reference: who, what happened, "
                 "where, and the main number."},
                {"name": "brevity", "weight": 1, "scale": 5,
                 "description": "One sentence, without the text's side details or any preamble."},
            ],
            "mode": "pointwise",
            "reference": True,
        },
    },
    "contacts": {
        "description": "Extract a person's name, age, city and company from a short message as "
        "a JSON object; other names and numbers get in the way.",
        "template": "{prompt}\n\nMessage: {input}",
        "labels": None,
        "metric": "json_schema",
        "json_schema": CONTACT_SCHEMA,
        # the object is about 30 tokens; room for a code fence or a sentence around it
        "max_answer_tokens": 96,
        "seed_prompts": [
            "Give the details of the person in this message as JSON.",
            "Reply with only a JSON object with the keys name, age, city and company for the "
            "person this message is about; age is a number.",
            "Who is this message about?",
        ],
    },
}


def data_files(name: str) -> dict[str, str]:
    return {split: str(DATA_DIR / f"{name}.{split}.jsonl") for split in SPLITS}


def builtin_definition(name: str) -> dict[str, Any]:
    """The definition of built-in task ``name`` as ``TaskSpec`` fields, data paths included."""
    definition = {k: v for k, v in BUILTINS[name].items() if v is not None}
    return {"name": name, **definition, "data": data_files(name), "format": "jsonl",
            "columns": {"input": "input", "target": "target", "id": "id"}}
