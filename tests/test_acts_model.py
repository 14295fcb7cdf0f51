"""The dialogue-act model's fast path gives the logits of its documented feature matrix, and a text
encoded twice in a turn (intent model, then act model) is embedded once, exactly."""

from __future__ import annotations

import numpy as np

from app.core.settings import get_settings
from models.acts import get_acts
from models.acts.model import softmax
from models.intents.encoder import get_encoder

TEXTS = ["yes", "no, 4000", "send 500 to ravi", "why do you need an OTP?", "haan ji", "talk to a person",
         "actually from my current account", "nahi"]
CONTEXTS = ["confirm", "slot:amount", "none", "otp", "confirm", "slot:payee", "confirm", "offer"]


def test_predict_equals_the_augmented_feature_matrix() -> None:
    model = get_acts(get_settings())
    fast = model.predict(TEXTS, CONTEXTS)
    probs = softmax((model.features(TEXTS, CONTEXTS) @ model.weights.T + model.bias) / model.temperature)
    for pred, row in zip(fast, probs):
        assert pred.act == model.labels[int(row.argmax())]
        assert dict(pred.ranking) == {model.labels[i]: round(float(row[i]), 4) for i in range(len(row))}


def test_a_single_text_is_embedded_once_and_exactly() -> None:
    settings = get_settings()
    encoder = get_encoder(settings.embedding_model, 64, True)
    first = encoder.encode(["what is the cheque book charge"])
    calls = []
    real = encoder._encode
    encoder._encode = lambda *a, **k: calls.append(a) or real(*a, **k)  # count real forwards
    try:
        again = encoder.encode(["what is the cheque book charge"])
        assert calls == []  # remembered: the second model of the turn pays nothing
        np.testing.assert_array_equal(first, again)
        again[0, 0] = 42.0  # callers get a copy, never the remembered vector
        assert encoder.encode(["what is the cheque book charge"])[0, 0] != 42.0
        for i in range(10):  # a bounded memory: older texts are encoded again
            encoder.encode([f"filler text {i}"])
        encoder.encode(["what is the cheque book charge"])
        assert len(calls) == 11
    finally:
        del encoder._encode
    fresh = encoder._encode(["what is the cheque book charge"], 1, False)
    np.testing.assert_array_equal(first, fresh)  # the same vector a fresh forward gives
