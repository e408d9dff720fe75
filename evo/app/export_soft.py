"""Exporting a soft prompt: its vectors as a ``.npy`` file, with a JSON sidecar naming everything
needed to apply them again (the model file and its SHA-256, where the vectors go in the template,
the labels, and ``z`` with the projection that rebuilds them).

The vectors are rebuilt from the stored ``z`` on the model file the job used; a file whose
SHA-256 is not the one the soft prompt was learned on is refused, since its embedding space is
another one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evo.app.export import NoBestPrompt
from evo.app.task_format import task_format
from evo.soft_prompt import SoftPrompt

SIDECAR_FORMAT = "evo-soft-prompt/1"


class NoSoftPrompt(LookupError):
    pass


def write_soft_prompt(store: Any, job: Any, output: Path) -> tuple[Path, Path]:
    """The job's best soft prompt on the full dev split, as ``output`` with the suffixes
    ``.npy`` (float32, one row per vector) and ``.json`` (the sidecar)."""
    from workers.llm_local import bundled_model_path
    from workers.soft_prompts import model_sha256, soft_vectors_for

    board = store.leaderboard(job.id, split="dev", k=10_000)
    if not board:
        raise NoBestPrompt(job.id, job.status)
    soft = [(c, ev) for c, ev in board if c.kind == "soft_prompt"]
    if not soft:
        raise NoSoftPrompt(f"job {job.id} has no soft prompt scored on the whole dev split "
                           "(only bbt jobs learn soft prompts)")
    cand, ev = soft[0]
    spec = job.spec or {}
    model = (spec.get("models") or {}).get("task") or {}
    path = model.get("model") or bundled_model_path()
    digest = model_sha256(path)
    learned_on = cand.meta.get("model_sha256")
    if learned_on and learned_on != digest:
        raise NoSoftPrompt(f"the model file {path} (SHA-256 {digest[:12]}…) is not the one the "
                           f"soft prompt was learned on ({learned_on[:12]}…)")
    prompt = SoftPrompt.from_meta(cand.meta)
    vectors = soft_vectors_for(path).vectors(prompt)
    npy, sidecar = output.with_suffix(".npy"), output.with_suffix(".json")
    npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy, vectors.astype(np.float32))
    tests = [e for e in store.evaluations(job.id, split="test") if e.candidate_id == cand.id]
    stats = job.stats or {}
    meta = {
        "format": SIDECAR_FORMAT,
        "vectors": {"file": npy.name, "shape": list(vectors.shape), "dtype": "float32"},
        "how_to_apply": (
            "Render the task's template with the prompt's place left open; feed the model the "
            "tokens before that place, then these vectors in place of token embeddings, then "
            "the tokens after it (chat template applied as for any request)"),
        "model": {"file": Path(path).name, "sha256": digest,
                  "n_embd": int(vectors.shape[1])},
        "task_format": task_format(spec.get("task", job.task), stats),
        "job_id": job.id,
        "candidate_id": cand.id,
        "scores": {"dev": ev.value, "dev_examples": ev.n,
                   "test": tests[-1].value if tests else None},
        "readable_approximation": cand.text,
        "norm": cand.meta.get("norm"),
        **prompt.to_meta(),
    }
    sidecar.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return npy, sidecar
