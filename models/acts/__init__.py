"""Dialogue acts: what a message does in the conversation, read against what the bot asked."""

from models.acts.load import acts_model_dir, get_acts, prepare_acts
from models.acts.model import (
    ActPrediction,
    DialogueActClassifier,
    context_group,
    load_examples,
    model_text,
    train_acts,
)

__all__ = ["ActPrediction", "DialogueActClassifier", "acts_model_dir", "get_acts", "prepare_acts", "context_group", "load_examples", "model_text", "train_acts"]
