"""Approach 4: few-shot classification with a small instruct LLM, decoding constrained to the labels.

The prompt (ChatML, rendered by :func:`app.text.chatml.render_chatml`, which neutralises any
special tokens in the customer's text) lists the intents with their descriptions, then a
handful of labelled examples as user/assistant turns, then the message. Nothing is generated
freely: each label's tokens (plus ``<|im_end|>``) are scored under the model and the label
log-likelihoods are the class scores, so the answer is always one of the labels.

Speed: the fixed prefix (instructions + examples) is run once and its KV cache reused; per
message only the message turn and the label continuations are computed, the labels in one
batch.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from app.text.chatml import render_chatml
from models.intents.base import IntentClassifier
from models.intents.data import Dataset
from models.llm import llm_model_version, load_llm

LABEL_CHUNK = 16  # labels scored per batch (memory: the prompt's KV cache is repeated this many times)

SYSTEM = (
    "You are an intent classifier for a bank's chat assistant. Read the customer's message and answer "
    "with exactly one intent name from this list, nothing else.\n"
)


def build_system(labels: list[str], descriptions: dict[str, str]) -> str:
    """The instruction turn: the label set with one-line descriptions."""
    lines = [f"- {lab}: {descriptions.get(lab, '')}".rstrip(": ") for lab in labels]
    return SYSTEM + "\n".join(lines)


def select_few_shot(data: Dataset, labels: list[str], per_label: int, seed: int) -> tuple[list[tuple[str, str]], set[int]]:
    """``per_label`` examples of each label (seeded), interleaved so no label sits only at the end."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(data.labels):
        by_label.setdefault(lab, []).append(i)
    chosen: list[list[int]] = []
    for lab in labels:
        idx = list(by_label.get(lab, []))
        rng.shuffle(idx)
        chosen.append(idx[:per_label])
    shots, used = [], set()
    for round_ in range(per_label):
        for lab, idx in zip(labels, chosen):
            if round_ < len(idx):
                shots.append((data.texts[idx[round_]], lab))
                used.add(idx[round_])
    return shots, used


class LLMScorer:
    """Scores every label as a continuation of the prompt; thread-safe, prefix cached."""

    def __init__(self, labels: list[str], system: str, shots: list[tuple[str, str]], settings=None) -> None:  # noqa: ANN001
        import torch  # heavy: torch (~1 s), only when the LLM scores

        self._torch = torch
        self._render = render_chatml
        self.tokenizer, self.model = load_llm(settings)
        self.labels = labels
        messages: list[dict[str, str]] = [{"role": "system", "content": system}]
        for text, lab in shots:
            messages += [{"role": "user", "content": text}, {"role": "assistant", "content": lab}]
        self.prefix_text = render_chatml(messages, add_generation_prompt=False)
        self._lock = threading.Lock()
        end = self.tokenizer.eos_token or "<|im_end|>"
        self.label_ids = [self.tokenizer(lab + end, add_special_tokens=False).input_ids for lab in labels]
        prefix_ids = self.tokenizer(self.prefix_text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = self.model(input_ids=prefix_ids, use_cache=True)
        self.prefix_len = prefix_ids.shape[1]
        self.prefix_cache = out.past_key_values

    def scores(self, text: str) -> np.ndarray:
        """Log-likelihood of each label given the prompt and ``text`` (shape (k,))."""
        torch = self._torch
        # The message turn alone, rendered the same way (its user content neutralised).
        full = self._render([{"role": "user", "content": text}], add_generation_prompt=True)
        ids = self.tokenizer(full, add_special_tokens=False, return_tensors="pt").input_ids
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with self._lock, torch.inference_mode():
            cache = copy.deepcopy(self.prefix_cache)
            out = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
            first = torch.log_softmax(out.logits[0, -1], dim=-1)  # next-token distribution after the prompt
            cache = out.past_key_values
            total = self.prefix_len + ids.shape[1]
            scores = first[torch.tensor([t[0] for t in self.label_ids])].clone()
            multi = [i for i, t in enumerate(self.label_ids) if len(t) > 1]
            # Labels longer than one token are scored in chunks: the prompt's KV cache is repeated
            # once per label in a chunk, so the chunk size bounds memory (cache × chunk).
            for c0 in range(0, len(multi), LABEL_CHUNK):
                chunk = multi[c0 : c0 + LABEL_CHUNK]
                longest = max(len(self.label_ids[i]) for i in chunk)
                cont = torch.full((len(chunk), longest - 1), pad, dtype=torch.long)
                for j, i in enumerate(chunk):
                    t = self.label_ids[i]
                    cont[j, : len(t) - 1] = torch.tensor(t[:-1])
                branch = copy.deepcopy(cache) if c0 + LABEL_CHUNK < len(multi) else cache
                branch.batch_repeat_interleave(len(chunk))
                # Right padding: pads come after each label's real tokens, so causality keeps them harmless.
                mask = torch.ones((len(chunk), total + longest - 1), dtype=torch.long)
                out2 = self.model(input_ids=cont, past_key_values=branch, attention_mask=mask, use_cache=False)
                logp = torch.log_softmax(out2.logits, dim=-1)  # position j predicts the label's token j+1
                for j, i in enumerate(chunk):
                    t = self.label_ids[i]
                    scores[i] += logp[j, torch.arange(len(t) - 1), torch.tensor(t[1:])].sum()
        return scores.numpy().astype(np.float64)


class LLMClassifier(IntentClassifier):
    approach = "llm"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        super().__init__(model_dir, config)
        shots = [tuple(s) for s in config["few_shot"]]
        self.scorer = LLMScorer(self.labels, config["system"], shots)  # type: ignore[arg-type]
        self.model_version = config.get("model_version", "intents-llm")

    def _scores(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.scorer.scores(t) for t in texts])


def train_llm(data: Dataset, out: Path, labels: list[str], fast: bool, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """No weights change: choose the few-shot examples, then calibrate on a bounded sample of the rest."""
    per_label = int(params.get("shots_per_label", 1 if fast or len(labels) > 20 else 2))
    shots, used = select_few_shot(data, labels, per_label, seed)
    system = build_system(labels, data.descriptions)
    scorer = LLMScorer(labels, system, shots)
    rest = [i for i in range(len(data)) if i not in used]
    rng = np.random.default_rng(seed)
    n_cal = int(params.get("calibration_size", 30 if fast else 200))
    cal = sorted(rng.choice(rest, size=min(n_cal, len(rest)), replace=False).tolist()) if rest else []
    logits = np.stack([scorer.scores(data.texts[i]) for i in tqdm(cal, desc="calibrating", leave=False)]) if cal else np.zeros((0, len(labels)))
    y = np.array([labels.index(data.labels[i]) for i in cal])
    return {
        "val_logits": logits,
        "val_y": y,
        "val_kind": f"random sample of {len(cal)} examples not used as few-shot examples (seed {seed})",
        "hyperparameters": {"shots_per_label": per_label, "calibration_size": len(cal), "llm": llm_model_version(),
                            "decoding": "label log-likelihood (constrained to the label set)", "seed": seed},
        "config": {"system": system, "few_shot": [list(s) for s in shots], "llm": llm_model_version()},
    }
