"""A cross-encoder reranker trained in the project from the MiniLM weights, on the corpus being indexed.

No pretrained cross-encoder can be downloaded here, so ``retrieval.rerank.reranker_for_index`` builds one:
synthetic queries + hard negatives from :mod:`retrieval.pairs`, a listwise (softmax over
one positive and its negatives) fine-tune of MiniLM with a one-logit head, and a fusion weight
between the cross-encoder and the first-stage (hybrid) score chosen on held-out *synthetic*
queries, so nothing is tuned on the evaluation questions. The result is cached under
``<models_dir>/reranker/<corpus fingerprint>-<config hash>`` with its training record
(``reranker.json``) and a model card generated from it (``model_card.md``, :mod:`models.reranker.card`).
"""

from models.reranker.card import CARD_NAME, model_card, render_model_card, write_model_card
from models.reranker.model import FORMAT, CrossEncoderReranker, Passage, RerankerConfig, refresh_card, train_cross_encoder, zscore

__all__ = ["CARD_NAME", "FORMAT", "CrossEncoderReranker", "Passage", "RerankerConfig", "model_card", "refresh_card",
           "render_model_card", "train_cross_encoder", "write_model_card", "zscore"]
