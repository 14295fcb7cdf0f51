"""Intent classification: one interface, four selectable approaches.

``prepare_classifier(settings)`` trains the approach named by ``settings.classifier``
(frozen | finetune | zeroshot | llm) into ``settings.models_dir / "intents-<approach>"`` when it is
missing or was trained on other YAML data (``sahayak prepare``; fast configuration).
``get_classifier(settings)`` only loads it (or ``settings.intent_model_dir``), once per process:
a customer's turn never waits for training.
"""

from models.intents.base import IntentClassifier
from models.intents.data import OOS_LABEL, Dataset, load_dataset
from models.intents.lineage import training_record
from models.intents.load import default_model_dir, get_classifier, prepare_classifier
from models.intents.train import APPROACH_NAMES, APPROACHES, PRESETS, evaluate, load_model, train_model

__all__ = [
    "APPROACHES", "APPROACH_NAMES", "PRESETS", "OOS_LABEL", "Dataset", "IntentClassifier", "evaluate", "get_classifier", "load_dataset",
    "load_model", "prepare_classifier", "train_model", "training_record", "default_model_dir",
]
