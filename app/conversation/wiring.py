"""The composition root: the one place that decides which component each part of the pipeline gets.

Every channel builds its pipeline here — the web app (:mod:`app.web.runtime`), the CLI's
``chat`` / ``turn`` commands, the benchmarks and the tests — so handlers, the dialogue and the
assistant receive their collaborators instead of reaching for process-wide singletons::

    settings → bank facade ─┬─ session store
                            └─ support store (hand-offs, feedback) ─┐
    knowledge-base getter, scoring-client getter ───────────────────┴─ handler services
    classifier getter, dialogue-act model getter, tracker getter (redactor: privacy.redact.redact)
                                              → Assistant

Heavy components (the classifier, the dialogue-act model, the knowledge base, the scoring client's
keys) are loaded by getters on first use, so building a pipeline is cheap and `sahayak bank seed`
never loads a model. The getters only load: models and indexes are trained and built by
`sahayak prepare` (or an explicit train command), never during a customer's turn.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Callable

from app.bank.service import BankService
from app.conversation.assistant import Assistant
from app.conversation.sessions import SessionStore
from app.conversation.support import SupportStore
from app.core.settings import Settings, get_settings
from handlers.base import HandlerServices, KnowledgeBaseLike, ScorerLike
from models.acts import DialogueActClassifier, get_acts, prepare_acts
from models.intents import IntentClassifier, get_classifier, prepare_classifier
from models.intents.encoder import set_torch_threads
from privacy.client import get_client
from privacy.redact import redact
from provenance.tracker import Tracker, get_tracker
from retrieval.prepare import get_knowledge_base, prepare_knowledge_base


# What the pipeline's getters load, and the one function that builds each (train, index) when it is
# missing or stale. `sahayak prepare` runs these steps with progress; benches and the test suite call
# prepare_pipeline. Each is quick when its output is current (fingerprint checks only).
PREPARE_STEPS: list[tuple[str, Callable[[Settings], str]]] = [
    ("Intent model (train when missing or stale)", lambda settings: prepare_classifier(settings)),
    ("Dialogue-act model", lambda settings: prepare_acts(settings)),
    ("Knowledge-base index (and reranker in rerank mode)", lambda settings: prepare_knowledge_base(settings)),
]


def prepare_pipeline(settings: Settings | None = None) -> list[str]:
    """Build whatever the pipeline's getters will load (models, index); one summary line per step."""
    settings = settings or build_settings()
    return [fn(settings) for _label, fn in PREPARE_STEPS]


def serving_process(settings: Settings | None = None) -> None:
    """Configure this process to serve turns (the chat, `sahayak chat`/`turn`, the turn benches):
    torch on ``settings.serving_threads`` threads. Measured with bench/turns.py on 2 cores: a turn's
    p50 fell from ~30 to ~11 ms with one thread instead of two (docs/architecture.md)."""
    set_torch_threads((settings or build_settings()).serving_threads)


def build_settings() -> Settings:
    """The process's settings (``SAHAYAK_*`` environment, defaults that work with no configuration)."""
    return get_settings()


def build_bank(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> BankService:
    """The bank facade on ``settings.db_url`` (schema created if missing)."""
    return BankService(settings.db_url, settings=settings, clock=clock)


def build_sessions(bank: BankService) -> SessionStore:
    """The dialogue-session store, on the bank's database and clock."""
    return SessionStore(bank.db)


def build_support(bank: BankService) -> SupportStore:
    """The hand-off and feedback store, on the bank's database and clock."""
    return SupportStore(bank.db)


def knowledge_base_getter(settings: Settings) -> Callable[[], KnowledgeBaseLike]:
    """Loads the knowledge base (indexed by `sahayak prepare`) on first call."""
    return partial(get_knowledge_base, settings)


def scoring_getter(settings: Settings) -> Callable[[], ScorerLike]:
    """The encrypted-scoring client for ``settings``' service URL (one key pair per URL, made on first call)."""
    return partial(get_client, settings)


def build_services(settings: Settings, support: SupportStore) -> HandlerServices:
    """What the handlers may use besides the bank: knowledge base, scoring client, support desk."""
    return HandlerServices(
        knowledge_base_getter=knowledge_base_getter(settings),
        scoring_getter=scoring_getter(settings),
        support=support,
    )


def classifier_getter(settings: Settings) -> Callable[[], IntentClassifier]:
    """Loads the configured intent classifier (trained by `sahayak prepare`) on first call."""
    return partial(get_classifier, settings)


def acts_getter(settings: Settings) -> Callable[[], DialogueActClassifier]:
    """Loads the dialogue-act model (trained by `sahayak prepare`) on first call."""
    return partial(get_acts, settings)


def tracker_getter(settings: Settings) -> Callable[[], Tracker]:
    """Opens the provenance tracker, which redacts everything it writes with :func:`privacy.redact.redact`."""
    return partial(get_tracker, settings, redactor=redact)


def build_assistant(
    settings: Settings | None = None,
    *,
    bank: BankService | None = None,
    classifier: IntentClassifier | None = None,
    tracker: Tracker | None = None,
) -> Assistant:
    """The whole turn pipeline. Anything given (a test's bank, classifier or tracker) is used as is."""
    settings = settings or build_settings()
    bank = bank or build_bank(settings)
    support = build_support(bank)
    return Assistant(
        settings, bank,
        sessions=build_sessions(bank),
        support=support,
        services=build_services(settings, support),
        load_classifier=classifier_getter(settings),
        load_acts=acts_getter(settings),
        open_tracker=tracker_getter(settings),
        classifier=classifier,
        tracker=tracker,
    )
