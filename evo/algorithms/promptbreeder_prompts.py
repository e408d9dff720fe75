"""Promptbreeder's words: its meta-prompt templates, and the default sets of mutation-prompts and
thinking styles that a spec may replace (``mutation_prompts``, ``thinking_styles``).

Each template shows one worked example on a made-up subject (is a "zorb" a "wug" or a "dax"?), as
the other methods' do (``evo/algorithms/evoprompt.py``): small optimizer models copy a shown format
far more reliably than they follow a described one, and a proposal that borrows the example's
words is caught (``MetaPrompt.echo``).
"""

from __future__ import annotations

# init: a unit's first task-prompt, from a thinking style, its mutation-prompt and the task
INIT = """{thinking_style} {mutation_prompt}
With that in mind, write an instruction for the task below, between <prompt> and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
Instruction: <prompt>Look at the zorb, then answer wug or dax.</prompt>

Task: {task}
Instruction:"""

# direct mutation, zero-order: a new task-prompt from the task's description alone
ZERO_ORDER = """Give one useful hint for the task below, written as an instruction to the \
person who does it, between <prompt> and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
Hint: <prompt>Read all of the zorb below, then answer wug or dax.</prompt>

Task: {task}
Hint:"""

# direct mutation, first-order: the unit's mutation-prompt applied to its task-prompt (also how a
# hypermutated mutation-prompt writes the child's task-prompt)
FIRST_ORDER = """Change an instruction by following this rule: {mutation_prompt}
Write only the changed instruction, between <prompt> and </prompt>.

Instruction: Say whether the zorb below is a wug or a dax.
Changed: <prompt>Is the zorb below a wug or a dax? Answer in one word.</prompt>

Instruction: {prompt}
Changed:"""

# estimation of distribution: the population's distinct task-prompts, in random order
EDA = """Here is a list of instructions for one task, in no particular order. Add one more \
instruction to the list: new, unlike each of them, and useful for the task. Write it between \
<prompt> and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
- Is the zorb a wug or a dax?
- Name the zorb: wug or dax.
New: <prompt>Decide whether the zorb is a wug or a dax, and say which.</prompt>

Task: {task}
{prompts}
New:"""

# estimation of distribution, ranked: the same list ordered worst to best, led by the unit's
# mutation-prompt
EDA_RANK = """Here is a list of instructions for one task, ranked from the worst to the best by \
how well they worked. {mutation_prompt}
Write one new instruction that should work better than every one of them, between <prompt> \
and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
- Wug or dax?
- Is the zorb a wug or a dax?
New: <prompt>Is the zorb below a wug or a dax? Answer in one word.</prompt>

Task: {task}
{prompts}
New:"""

# lineage: the best task-prompt of each generation so far, oldest first
LINEAGE = """Each instruction below was the best one found so far for one task, listed in the \
order they were found: each worked better than the one before it. Write the next instruction in \
this line, better still, between <prompt> and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
- Wug or dax?
- Is the zorb a wug or a dax?
Next: <prompt>Is the zorb below a wug or a dax? Answer in one word.</prompt>

Task: {task}
{prompts}
Next:"""

# hypermutation, zero-order: a new mutation-prompt from a thinking style and the task
HYPER_ZERO = """{thinking_style}
Write one rule for how to change an instruction so that it works better for the task below. \
The rule says how to change any instruction for the task; it does not answer the task. Write \
the rule between <prompt> and </prompt>.

Task: Say whether the zorb below is a wug or a dax.
Rule: <prompt>Change the instruction so that it names wug and dax as the answers.</prompt>

Task: {task}
Rule:"""

# hypermutation, first-order: the unit's mutation-prompt improved
HYPER_FIRST = """Improve a rule for how to change an instruction: make it clearer and more \
useful, keeping its intent. Write only the improved rule, between <prompt> and </prompt>.

Rule: Change the instruction about the zorb to a short question.
Improved: <prompt>Change the instruction about the zorb to a short question, with a one \
word answer.</prompt>

Rule: {mutation_prompt}
Improved:"""

# Lamarckian: a task-prompt written back from an example the winner answered correctly
LAMARCKIAN = """Someone was given an instruction for a task and then answered the example below \
correctly. Write the instruction they were most likely given, between <prompt> and </prompt>.

Example: This zorb is no dax.
Their answer: wug
Instruction: <prompt>Say whether the zorb below is a wug or a dax.</prompt>

Task: {task}
Example: {input}
Their answer: {output}
Instruction:"""

# one correct working-out of a unit's few-shot context, shown before its task-prompt
CONTEXT_ENTRY = "Example: {input}\nAnswer: {output}"

TEMPLATES = {
    "init": INIT,
    "zero_order": ZERO_ORDER,
    "first_order": FIRST_ORDER,
    "eda": EDA,
    "eda_rank": EDA_RANK,
    "lineage": LINEAGE,
    "hyper_zero": HYPER_ZERO,
    "hyper_first": HYPER_FIRST,
    "lamarckian": LAMARCKIAN,
    "context_entry": CONTEXT_ENTRY,
}

MUTATION_PROMPTS = (
    "Rewrite the instruction so that it is shorter and clearer.",
    "Make the instruction say exactly what the answer should look like.",
    "Change the instruction so that it tells the reader what to look at first.",
    "Rewrite the instruction as if explaining the task to a new colleague.",
    "Say the same thing in different words, keeping the meaning.",
    "Add one helpful hint to the instruction.",
    "Turn the instruction into a direct question.",
    "Remove every word from the instruction that does not help to answer.",
    "Rewrite the instruction so that it names the possible answers.",
    "Make the instruction firmer: tell the reader exactly what to do.",
    "Rewrite the instruction in plain, simple English.",
    "Change the instruction so that it asks for a one-word answer.",
    "Rewrite the instruction so that it warns about a common mistake.",
    "Give the instruction a different first step.",
)

THINKING_STYLES = (
    "Think about the problem step by step.",
    "Look at the problem from the reader's point of view.",
    "Consider what a careless reader would get wrong.",
    "Focus on the single most important clue.",
    "Imagine explaining the task to a child.",
    "Start from the answer and work backwards.",
    "Think about which words of the input matter most.",
    "Make the problem as simple as it can be.",
    "Compare the possible answers before choosing one.",
    "Question every assumption.",
    "Think like an expert in the field.",
    "Be brief and concrete.",
)
