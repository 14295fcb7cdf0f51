"""Understanding one message in the context of the conversation.

    text → language → Hinglish spelling (Devanagari romanised) ─┬→ intent model  → task ranking
                                                                ├→ act model     → dialogue act (given what the bot asked)
                                                                └→ entities      (OTP only when an OTP is awaited)

The intent model may know finer labels than the tasks the handlers serve (BANKING77's 77 categories
join the product's own intents, ``data/taxonomy/banking77.yaml``): a label's probability counts for
its task, so "card_arrival" and "card_delivery_estimate" both vote for ``Card_Delivery_Status``, and a
FAQ-mapped label carries its knowledge-base topic along.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from app.core.types import Classification
from app.text.entities import extract_entities
from app.text.preprocess import detect_language
from app.text.script import romanise
from models.acts import ActPrediction, DialogueActClassifier
from models.intents import IntentClassifier

# An OTP-shaped number means a code only when the bot asked for one (issue 19: a code typed
# elsewhere is not extracted, so it is never stored as an entity either).
_OTP_CONTEXT = "otp"


@dataclass
class Understanding:
    """Everything the dialogue needs to know about one message."""

    text: str  # the normalised message
    model_text: str  # what the models read (Devanagari in Hinglish spelling)
    language: str  # en | hinglish | hi
    context: str  # what the bot was waiting for (DialogueState.context())
    task: str  # the likeliest task
    confidence: float  # its calibrated probability (summed over the labels that map to it)
    ranking: list[tuple[str, float]]  # tasks, best first
    label: str  # the intent model's own best label (may be finer than the task)
    act: ActPrediction
    entities: dict[str, Any] = field(default_factory=dict)
    topic_hint: str | None = None  # a knowledge-base document the best label points at
    model_version: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def is_question(self) -> bool:
        """The message asks how something works rather than asking for it to be done."""
        return self.act.act == "question"

    def classification(self) -> Classification:
        """The raw intent view (for provenance and the ``classify`` command)."""
        return Classification(intent=self.task, confidence=self.confidence, ranking=self.ranking[:3],
                              entities=self.entities, model_version=self.model_version)


class Understander:
    """The understanding component: ``warm_up()`` loads the models, ``run()`` reads one message."""

    def __init__(self, load_classifier: Callable[[], IntentClassifier], load_acts: Callable[[], DialogueActClassifier],
                 label_tasks: Mapping[str, str] | None = None, label_topics: Mapping[str, str] | None = None) -> None:
        self._load_classifier = load_classifier
        self._load_acts = load_acts
        self._classifier: IntentClassifier | None = None
        self._acts: DialogueActClassifier | None = None
        self.label_tasks = dict(label_tasks or {})
        self.label_topics = dict(label_topics or {})

    @property
    def classifier(self) -> IntentClassifier:
        if self._classifier is None:
            self._classifier = self._load_classifier()
        return self._classifier

    @property
    def acts(self) -> DialogueActClassifier:
        if self._acts is None:
            self._acts = self._load_acts()
        return self._acts

    def warm_up(self) -> None:
        """Load both models now (start-up), not on the first message."""
        self.run("hello", "none")

    def task_of(self, label: str) -> str:
        return self.label_tasks.get(label, label)

    def run(self, text: str, context: str) -> Understanding:
        """Read ``text`` (already normalised) given what the bot was waiting for."""
        t0 = time.perf_counter()
        language = detect_language(text)
        model_text = romanise(text)
        clf = self.classifier
        probs = np.asarray(clf.predict_proba([model_text])[0], dtype=np.float64)
        t1 = time.perf_counter()
        tasks: dict[str, float] = {}
        for label, p in zip(clf.labels, probs):
            task = self.task_of(label)
            tasks[task] = tasks.get(task, 0.0) + float(p)
        ranking = sorted(tasks.items(), key=lambda kv: -kv[1])
        best_label = clf.labels[int(np.argmax(probs))]
        pred, _conf = clf.decide(probs[None, :])
        decided = self.task_of(clf.labels[int(pred[0])])
        task, confidence = ranking[0]
        if decided != task and decided == "Out_Of_Scope":  # the model's out-of-scope threshold fired
            task, confidence = decided, tasks.get(decided, 0.0)
        act = self.acts.predict_one(model_text, context)
        t2 = time.perf_counter()
        entities = extract_entities(text)
        if context != _OTP_CONTEXT:
            entities.pop("otp", None)
        return Understanding(
            text=text, model_text=model_text, language=language, context=context, task=task,
            confidence=round(confidence, 6), ranking=[(t, round(p, 6)) for t, p in ranking[:5]], label=best_label,
            act=act, entities=entities, topic_hint=self.label_topics.get(best_label),
            model_version=getattr(clf, "model_version", ""),
            timings_ms={"intent": round((t1 - t0) * 1000, 3), "act": round((t2 - t1) * 1000, 3),
                        "entities": round((time.perf_counter() - t2) * 1000, 3)},
        )
