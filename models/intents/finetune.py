"""Approach 2: fine-tune the MiniLM weights end to end on the intent labels (CPU, torch).

Design (kept because the numbers supported it, see docs/intents.md):
- mean pooling + L2 norm + a linear head, i.e. the architecture MiniLM was pre-trained for,
  instead of BERT's [CLS] pooler (``AutoModelForSequenceClassification``), whose pooler this
  sentence-transformers checkpoint never trained for classification;
- the head is warm-started from the frozen approach's logistic regression, so fine-tuning
  starts at the baseline's accuracy instead of from random;
- label smoothing, linear warm-up/decay, length-bucketed batches (little padding on CPU),
  an opt-in wall-clock budget (off by default: the epoch count decides, so results do not depend
  on the machine's load);
- calibration (temperature, OOS threshold) on a held-out validation split, scored with the
  same int8-quantised encoder that serves predictions;
- optionally a refit head: logistic regression on the fine-tuned embeddings + character
  n-grams (the frozen default's features), kept only when it wins on that validation split.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from app.core.errors import SahayakError
from app.core.settings import get_settings
from models.embeddings import EMBEDDING_MODEL_NAME, embedding_model_path
from models.intents.data import Dataset, stratified_split
from models.intents.encoder import Encoder, get_encoder, mean_pool, set_torch_threads, training_threads
from models.intents.frozen import FrozenClassifier, _char_vectorizer, _fit_lr, _full_head

ENCODER_SUBDIR = "encoder"


class FinetuneClassifier(FrozenClassifier):
    """The fine-tuned encoder (stored in the model dir) + its linear head."""

    approach = "finetune"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        config = {**config, "embedding_model": str(Path(model_dir) / config.get("encoder_subdir", ENCODER_SUBDIR))}
        super().__init__(model_dir, config)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def _batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Length-bucketed batches in random order: similar lengths together, so little padding."""
    order = np.argsort(np.array(lengths) + rng.random(len(lengths)) * 3)  # jitter: buckets vary per epoch
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def run_layers(model, hidden, attention_mask, start: int, stop: int | None):  # noqa: ANN001, ANN201 - torch
    """Transformer layers ``start:stop`` of a BERT or MPNet ``AutoModel`` on the states entering ``start``.

    Uses the model's own mask function and, for MPNet, its relative position bias, so that
    ``run_layers(model, embeddings, mask, 0, None)`` equals ``model(...).last_hidden_state``
    (checked in tests/intents/test_finetune_cached.py for both architectures).
    """
    from transformers.masking_utils import create_bidirectional_mask  # heavy: transformers, only training needs it

    mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)
    extra = (model.encoder.compute_position_bias(hidden),) if hasattr(model.encoder, "compute_position_bias") else ()
    for layer in model.encoder.layer[start:stop]:
        out = layer(hidden, mask, *extra)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def lower_layer_states(model, tokenizer, texts: list[str], n_layers: int, max_length: int,  # noqa: ANN001
                       batch_size: int = 64) -> list:
    """Per text, the (unpadded) hidden states after the embeddings and the first ``n_layers`` layers."""
    import torch  # heavy: only training needs it

    was_training = model.training
    model.eval()
    out: list = [None] * len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode():
        for s in tqdm(range(0, len(texts), batch_size), desc=f"frozen layers 0-{n_layers - 1}", unit="batch", leave=False):
            idx = order[s : s + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = run_layers(model, model.embeddings(input_ids=enc["input_ids"]), enc["attention_mask"], 0, n_layers)
            for j, i in enumerate(idx):
                out[i] = hidden[j, : int(enc["attention_mask"][j].sum())].clone()
    model.train(was_training)
    return out


def _pad(states: list):  # noqa: ANN202 - (hidden, attention_mask) tensors
    import torch  # heavy: only training needs it

    n = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), n, states[0].shape[1])
    mask = torch.zeros(len(states), n, dtype=torch.long)
    for j, s in enumerate(states):
        hidden[j, : s.shape[0]] = s
        mask[j, : s.shape[0]] = 1
    return hidden, mask


def _top_embeddings(model, states: list, start: int, batch_size: int = 128) -> np.ndarray:  # noqa: ANN001
    """Sentence embeddings from cached lower-layer states (the top layers run in eval mode)."""
    import torch  # heavy: only training needs it

    was_training = model.training
    model.eval()
    order = np.argsort([s.shape[0] for s in states], kind="stable")
    out = np.zeros((len(states), int(model.config.hidden_size)), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(states), batch_size):
            idx = order[s : s + batch_size]
            hidden, mask = _pad([states[i] for i in idx])
            out[idx] = mean_pool(run_layers(model, hidden, mask, start, None).float(), mask).numpy()
    model.train(was_training)
    return out


def _hyperparameters(params: dict[str, Any], fast: bool, seed: int) -> dict[str, Any]:
    """The fine-tuning recipe: ``params`` over the defaults (recorded whole in metrics and lineage)."""
    hp = {
        "epochs": float(params.get("epochs", 1 if fast else 5)),
        "batch_size": int(params.get("batch_size", 32)),
        "lr": float(params.get("lr", 8e-5)),
        "head_lr": float(params.get("head_lr", 1e-3)),
        "weight_decay": 0.01,
        "label_smoothing": float(params.get("label_smoothing", 0.1)),
        "warmup_fraction": 0.06,
        "max_length": int(params.get("max_length", 64)),
        "val_fraction": float(params.get("val_fraction", 0.15)),
        # Opt-in wall-clock budget (0 = none): the epoch count decides by default, so the same data
        # and seed give the same model on an idle or a busy machine. What ran is recorded
        # (steps, epochs_done, stopped_early_by_time).
        "max_minutes": float(params.get("max_minutes", 0.0)),
        "freeze_layers": int(params.get("freeze_layers", 0)),
        # With frozen bottom layers, run them once per text (eval mode, no dropout) and train the
        # top layers on their cached output: each step then costs only the top layers. This is
        # what makes fine-tuning the top half of all-mpnet-base-v2 fit on 2 cores (docs/intents.md).
        "cache_frozen_layers": bool(params.get("cache_frozen_layers", False)) and int(params.get("freeze_layers", 0)) > 0,
        # Speed options, off by default: together 1.8x faster per step, but over 4 BANKING77 runs
        # they scored 0.2-0.4 points lower than float32 with trainable embeddings (docs/intents.md).
        # freeze_word_embeddings: the table is half of MiniLM's weights; no gradient, no AdamW update.
        "freeze_word_embeddings": bool(params.get("freeze_word_embeddings", False)),
        # bf16: autocast matmuls to bfloat16; only where the CPU has it natively (else it is slower).
        "bf16": bool(params.get("bf16", False)) and cpu_has_bf16(),
        "warm_start_C": float(params.get("C", 16.0)),
        "quantize_int8": bool(params.get("quantize", True)),
        "char_ngrams": bool(params.get("char_ngrams", not fast)),
        "char_weight": float(params.get("char_weight", 0.5)),
        "refit_C": float(params.get("refit_C", 32.0)),
        "seed": seed,
    }
    hp["base_encoder"] = str(params.get("embedding_model") or get_settings().embedding_model or EMBEDDING_MODEL_NAME)
    # The hold-out split has its own seed so that an ensemble's members (different ``seed``:
    # initial shuffles, dropout) are all scored on the same rows.
    hp["split_seed"] = int(params.get("split_seed", seed))
    return hp


def _warm_start_head(model, tokenizer, texts: list[str], y: np.ndarray, n_labels: int, hp: dict[str, Any],  # noqa: ANN001
                     base_path: str, seed: int):  # noqa: ANN202 - (torch head, cached lower-layer states or None)
    """1. The head warm-started from a logistic regression on the frozen embeddings, so fine-tuning
    starts at the frozen baseline's accuracy instead of from random."""
    import torch  # heavy: only training needs it

    cached: list | None = None
    if hp["cache_frozen_layers"]:
        # The cached states also give the frozen embeddings: the top layers run once, untrained.
        cached = lower_layer_states(model, tokenizer, texts, hp["freeze_layers"], hp["max_length"])
        # The top layers in bf16 when training uses it: 3x faster here (13 vs 42 s for mpnet on
        # 9,500 texts) and the head it seeds predicts the same label for 99.9 % of them.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=hp["bf16"]):
            x_warm = _top_embeddings(model, cached, hp["freeze_layers"])
    else:
        # The int8 encoder is used for speed (its vectors are within ~1% cosine of full
        # precision; this only seeds the head).
        x_warm = get_encoder(base_path, hp["max_length"], quantize=hp["quantize_int8"]).encode(texts, progress=True)
    coef, intercept = _full_head(_fit_lr(x_warm, y, hp["warm_start_C"], seed), n_labels)
    head = torch.nn.Linear(coef.shape[1], n_labels)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(coef, dtype=torch.float32))
        head.bias.copy_(torch.tensor(np.maximum(intercept, -50.0), dtype=torch.float32))
    return head, cached


def _freeze(model, hp: dict[str, Any]) -> None:  # noqa: ANN001 - a transformers AutoModel
    """Stop gradients to the word embeddings and/or the bottom ``freeze_layers`` layers, as configured."""
    if hp["freeze_word_embeddings"]:
        model.embeddings.word_embeddings.weight.requires_grad = False
    if hp["freeze_layers"] > 0:
        for p in model.embeddings.parameters():
            p.requires_grad = False
        for layer in model.encoder.layer[: hp["freeze_layers"]]:
            for p in layer.parameters():
                p.requires_grad = False


def _fine_tune(model, tokenizer, head, cached: list | None, texts: list[str], y: np.ndarray,  # noqa: ANN001
               hp: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """2. Fine-tune encoder + head for ``hp["epochs"]`` (or until the opt-in budget); what ran."""
    import torch  # heavy: only training needs it

    _freeze(model, hp)
    opt = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if p.requires_grad], "lr": hp["lr"]},
        {"params": head.parameters(), "lr": hp["head_lr"]},
    ], weight_decay=hp["weight_decay"], fused=True)  # one kernel per step: 47 vs 104 ms for mpnet's top half
    lengths = [len(t) for t in texts]
    steps_per_epoch = math.ceil(len(texts) / hp["batch_size"])
    planned_steps = max(1, int(round(steps_per_epoch * hp["epochs"])))
    total_steps = planned_steps
    # Linear warm-up/decay whose end moves in when the wall-clock budget cannot fit all planned
    # steps (measured after a few steps), so a budget-limited run still anneals to a low rate.
    sched_state = {"total": total_steps, "warm": max(1, int(hp["warmup_fraction"] * total_steps))}

    def lr_factor(s: int) -> float:
        if s < sched_state["warm"]:
            return (s + 1) / sched_state["warm"]
        return max(0.02, (sched_state["total"] - s) / max(1, sched_state["total"] - sched_state["warm"]))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=hp["label_smoothing"])
    model.train()
    t0 = time.perf_counter()
    step, stopped_early, losses = 0, False, []
    bar = tqdm(total=total_steps, desc="fine-tuning", unit="step", leave=False)
    while step < total_steps and not stopped_early:
        for b in _batches(lengths, hp["batch_size"], rng):
            if cached is not None:
                hidden, attn = _pad([cached[i] for i in b])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=hp["bf16"]):
                    hidden = run_layers(model, hidden, attn, hp["freeze_layers"], None)
            else:
                enc = tokenizer([texts[i] for i in b], padding=True, truncation=True, max_length=hp["max_length"], return_tensors="pt")
                attn = enc["attention_mask"]
                # bf16 autocast: the matmuls run in bfloat16 (native on AVX512-BF16/AMX CPUs, about
                # 1.6x faster per step); weights, optimiser state and the loss stay float32.
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=hp["bf16"]):
                    hidden = model(**enc).last_hidden_state
            emb = mean_pool(hidden.float(), attn)
            loss = loss_fn(head(emb), torch.as_tensor(y[b]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            if hp["max_minutes"] > 0 and (step == 8 or step % 25 == 0):
                # Re-estimated as the run goes (the machine's load changes): the schedule's end
                # moves to what the remaining budget fits, never past the planned epochs.
                elapsed = time.perf_counter() - t0
                per_step = elapsed / step
                feasible = step + int(max(0.0, hp["max_minutes"] * 60 - elapsed) / per_step)
                new_total = max(step + 1, min(planned_steps, feasible))
                if new_total != total_steps:
                    if new_total < planned_steps <= total_steps:  # first cut: say so while it runs
                        bar.write(f"note: the {hp['max_minutes']:g}-minute budget fits about "
                                  f"{new_total / steps_per_epoch:.1f} of {hp['epochs']:g} epochs on this machine "
                                  "(max_minutes / --max-minutes 0 lifts it)")
                    total_steps = new_total
                    sched_state["total"] = total_steps
                    sched_state["warm"] = min(sched_state["warm"], max(1, total_steps // 16))
                    bar.total = total_steps
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if step >= total_steps:
                break
            if hp["max_minutes"] > 0 and (time.perf_counter() - t0) / 60.0 > hp["max_minutes"]:
                stopped_early = True  # the opt-in wall-clock budget wins over the epoch count
                break
    bar.close()
    model.eval()
    return {"steps": step, "planned_steps": planned_steps, "epochs_done": round(step / steps_per_epoch, 3),
            "stopped_early_by_time": stopped_early, "final_loss": round(float(np.mean(losses[-20:])), 4),
            "fine_tune_seconds": round(time.perf_counter() - t0, 1)}


def _refit_head(serving: Encoder, texts: list[str], y: np.ndarray, val_texts: list[str], y_val: np.ndarray,
                val_logits: np.ndarray, n_labels: int, hp: dict[str, Any], seed: int):  # noqa: ANN202
    """4. A refit head on the fine-tuned embeddings + character n-grams (as the frozen default),
    returned only if it is more accurate on the validation split the fine-tuning never saw:
    ``(val_logits, arrays, char_vocab)`` or None."""
    import scipy.sparse as sp  # heavy: only training needs it

    x_tr = serving.encode(texts, progress=True)
    x_val = serving.encode(val_texts, progress=True)
    vec = _char_vectorizer().fit(texts)
    w = hp["char_weight"]
    feats_tr = sp.hstack([sp.csr_matrix(x_tr), w * vec.transform(texts)]).tocsr()
    feats_val = sp.hstack([sp.csr_matrix(x_val), w * vec.transform(val_texts)]).tocsr()
    c2, i2 = _full_head(_fit_lr(feats_tr, y, hp["refit_C"], seed), n_labels)
    logits2 = np.asarray(feats_val @ c2.T) + i2
    acc_head = float((val_logits.argmax(1) == y_val).mean())
    acc_refit = float((logits2.argmax(1) == y_val).mean())
    hp["val_accuracy"] = {"fine_tuned_head": round(acc_head, 4), "refit_with_char_ngrams": round(acc_refit, 4)}
    if acc_refit <= acc_head:
        return None
    arrays = {"coef": c2.astype(np.float32), "intercept": i2.astype(np.float32), "idf": vec.idf_.astype(np.float32)}
    return logits2, arrays, {k: int(v) for k, v in vec.vocabulary_.items()}


def train_finetune(data: Dataset, out: Path, labels: list[str], fast: bool, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune the encoder on ``data`` into ``out``: warm-started head, fine-tuning, validation
    logits with the serving (int8) encoder, optional refit head. Returns what the trainer calibrates
    on and records (validation logits and labels, metrics, hyper-parameters, config)."""
    t_start = time.perf_counter()  # first, so that the phases recorded below add up to the whole call
    import torch  # heavy: only training needs it
    from transformers import AutoModel, AutoTokenizer

    set_torch_threads(training_threads())
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    hp = _hyperparameters(params, fast, seed)
    base_path = str(embedding_model_path(params.get("embedding_model")))
    tr_idx, va_idx = stratified_split(data.labels, hp["val_fraction"], hp["split_seed"])
    if not va_idx:  # checked before any model loads: the temperature needs held-out rows
        raise SahayakError(f"val_fraction {hp['val_fraction']} holds out no rows of {len(data)} "
                           f"({len(data) // max(1, len(set(data.labels)))} per label on average); raise val_fraction or add data")
    texts = [data.texts[i] for i in tr_idx]
    y_all = np.array([labels.index(lab) for lab in data.labels])
    y = y_all[tr_idx]

    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    model = AutoModel.from_pretrained(base_path, local_files_only=True)
    head, cached = _warm_start_head(model, tokenizer, texts, y, len(labels), hp, base_path, seed)
    hp["warm_start_seconds"] = round(time.perf_counter() - t_start, 1)
    ran = _fine_tune(model, tokenizer, head, cached, texts, y, hp, rng)
    t_loop_end = time.perf_counter()
    cached = None  # hundreds of MB for mpnet; the rest of training does not need them
    enc_dir = out / ENCODER_SUBDIR
    model.save_pretrained(enc_dir, safe_serialization=True)
    tokenizer.save_pretrained(enc_dir)
    # 3. Validation logits with the serving configuration (int8 when quantised).
    serving = Encoder(str(enc_dir), hp["max_length"], hp["quantize_int8"])
    val_texts = [data.texts[i] for i in va_idx]
    coef = head.weight.detach().numpy().astype(np.float32)
    intercept = head.bias.detach().numpy().astype(np.float32)
    val_logits = serving.encode(val_texts, progress=True) @ coef.T + intercept
    arrays: dict[str, np.ndarray] = {"coef": coef, "intercept": intercept}
    char_vocab: dict[str, int] | None = None
    hp["head"] = "fine-tuned linear head"
    if hp["char_ngrams"]:
        refit = _refit_head(serving, texts, y, val_texts, y_all[va_idx], val_logits, len(labels), hp, seed)
        if refit is not None:
            val_logits, arrays, char_vocab = refit
            hp["head"] = "refit LR on fine-tuned embeddings + char n-grams"
    np.savez(out / "head.npz", **arrays)
    if char_vocab is not None:
        (out / "char_vocab.json").write_text(json.dumps(char_vocab, ensure_ascii=False), encoding="utf-8")
    hp.update(ran)
    hp.update({"after_fine_tune_seconds": round(time.perf_counter() - t_loop_end, 1),
               "n_train": len(texts), "n_val": len(va_idx)})
    return {
        "val_logits": val_logits,
        "val_y": y_all[va_idx],
        "metrics": {"epochs_planned": hp["epochs"], "epochs_done": hp["epochs_done"],
                    "stopped_by_time_budget": hp["steps"] < hp["planned_steps"]},
        "val_kind": f"stratified hold-out split ({hp['val_fraction']:.0%}, seed {hp['split_seed']}) not used for fine-tuning",
        "hyperparameters": hp,
        "config": {"max_length": hp["max_length"], "quantize": hp["quantize_int8"], "encoder_subdir": ENCODER_SUBDIR,
                   "char_ngrams": char_vocab is not None, "char_weight": hp["char_weight"]},
    }
