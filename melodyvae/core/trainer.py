"""The AR-VAE training loop, shared by every domain.

The domain supplies a model whose ``forward(x, **kwargs)`` returns an object with
``mu``, ``logvar`` and ``z`` and which has ``reconstruction_loss(output, x)`` and
``reconstruction_hits(output, x)``; the data as arrays with one attribute row per
example; and a function turning an index batch into input tensors (where on-the-fly
augmentation happens). Examples may carry a group label (e.g. a measure's meter):
then every batch holds one group only, and the batch maker is told which. The loop
owns epochs, the optimiser, validation, the best-on-validation choice and resuming.

Each epoch is seeded from ``(seed, epoch)``, so a run resumed after epoch k draws the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from melodyvae.core.checkpoint import load_resume_state, save_resume_state
from melodyvae.core.losses import ARConfig, kl_divergence, total_ar_loss
from melodyvae.errors import CheckpointError

logger = logging.getLogger(__name__)

# make_batch(inputs, rng) → model input; with grouped splits also group=label.
BatchMaker = Callable[..., Any]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the defaults are the command line's; see README for
    why they differ from the published batch 256, learning rate 1e-4, 30 epochs).

    The learning rate follows a cosine from ``learning_rate`` in the first epoch to
    ``learning_rate * final_lr_fraction`` in the last; it is a function of the epoch
    alone, so resuming needs no scheduler state.

    ``examples_per_epoch`` (None: the whole training split) makes an epoch the first
    that many examples of the epoch's shuffled order (in whole batches): on a data
    set too large to pass over between validations, each epoch draws a fresh
    sample, and validation, the best-checkpoint choice and the learning rate go by
    these shorter epochs.
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    final_lr_fraction: float = 0.05
    seed: int = 0
    loss: ARConfig = field(default_factory=ARConfig)
    reg_dims: tuple[int, ...] = (0, 1, 2, 3)
    device: str = "cpu"
    examples_per_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.examples_per_epoch is None:
            # Runs over whole epochs are described (and resumed) as before the
            # option existed.
            del data["examples_per_epoch"]
        return data


@dataclass
class Split:
    """Examples of one split: model inputs (N, ...) and attributes (N, L).

    ``groups`` (N,) int, if given, labels examples that may not share a batch with
    other labels (measures of different lengths, say).
    """

    inputs: np.ndarray
    attributes: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs)


def _batches(
    n: int,
    batch_size: int,
    rng: np.random.Generator | None,
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Index batches; with ``groups``, each batch within one group, the batches of
    all groups in random order (in group order without ``rng``)."""
    if groups is None:
        order = rng.permutation(n) if rng is not None else np.arange(n)
        return [order[start : start + batch_size] for start in range(0, n, batch_size)]
    batches = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if rng is not None:
            members = rng.permutation(members)
        batches.extend(
            members[start : start + batch_size]
            for start in range(0, len(members), batch_size)
        )
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _first_examples(batches: list[np.ndarray], n_examples: int) -> list[np.ndarray]:
    """The leading batches holding at least ``n_examples`` examples (all if fewer)."""
    kept, count = [], 0
    for batch in batches:
        if count >= n_examples:
            break
        kept.append(batch)
        count += len(batch)
    return kept


def _make(
    make_batch: BatchMaker,
    split: Split,
    index: np.ndarray,
    rng: np.random.Generator | None,
) -> Any:
    if split.groups is None:
        return make_batch(split.inputs[index], rng)
    return make_batch(split.inputs[index], rng, group=int(split.groups[index[0]]))


def _loss_terms(
    model: torch.nn.Module,
    x: torch.Tensor,
    attributes: torch.Tensor,
    config: TrainConfig,
    forward_kwargs: dict[str, Any],
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    output = model(x, **forward_kwargs)
    recon = model.reconstruction_loss(output, x)
    kl = kl_divergence(output.mu, output.logvar)
    ar, ar_terms = total_ar_loss(
        output.z, attributes, list(config.reg_dims), config.loss.delta
    )
    total = recon + config.loss.beta * kl + config.loss.gamma * ar
    terms = {"loss": total, "recon": recon, "kl": kl, "ar": ar}
    terms.update({f"ar{i}": term for i, term in enumerate(ar_terms)})
    return total, terms, model.reconstruction_hits(output, x)


def evaluate_split(
    model: torch.nn.Module,
    split: Split,
    config: TrainConfig,
    make_batch: BatchMaker,
    forward_kwargs: dict[str, Any],
) -> dict[str, float]:
    """Mean loss terms and reconstruction accuracy over ``split`` (no gradients)."""
    model.eval()
    sums: dict[str, float] = {}
    hits = total = 0
    n_batches = 0
    with torch.no_grad():
        for index in _batches(len(split), config.batch_size, None, split.groups):
            x = _make(make_batch, split, index, None).to(config.device)
            attributes = torch.as_tensor(
                split.attributes[index], dtype=torch.float32, device=config.device
            )
            _, terms, batch_hits = _loss_terms(
                model, x, attributes, config, forward_kwargs
            )
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item()
            hits += int(batch_hits.sum())
            total += batch_hits.numel()
            n_batches += 1
    metrics = {key: value / max(n_batches, 1) for key, value in sums.items()}
    metrics["acc"] = hits / max(total, 1)
    return metrics


def train(
    model: torch.nn.Module,
    train_split: Split,
    valid_split: Split,
    config: TrainConfig,
    make_batch: BatchMaker,
    *,
    train_kwargs: Callable[[int], dict[str, Any]] = lambda epoch: {},
    eval_kwargs: dict[str, Any] | None = None,
    save_best: Callable[[torch.nn.Module, dict[str, Any]], None] | None = None,
    resume_stem: str | None = None,
    resume: bool = False,
    run_identity: dict[str, Any] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``model``; returns the history and the best epoch's metrics.

    ``train_kwargs(epoch)`` gives the forward options of each epoch (e.g. a
    teacher-forcing schedule); ``eval_kwargs`` those of validation. After every epoch
    ``save_best`` is called when validation loss improved, and the resume state is
    written to ``resume_stem`` (if given). ``run_identity`` (data, model and
    settings, the epoch count aside) is stored with it; resuming a run whose
    identity differs is refused. ``on_batch(done, total)`` reports progress
    within an epoch, ``on_epoch(metrics)`` each finished epoch.
    """
    model.to(config.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    first_epoch = 1
    if resume:
        if resume_stem is None:
            raise ValueError("resume needs resume_stem")
        state = load_resume_state(resume_stem)
        saved_identity = json.loads(state.get("identity", "{}"))
        wanted_identity = json.loads(json.dumps(run_identity or {}, sort_keys=True))
        if saved_identity != wanted_identity:
            changed = sorted(
                key
                for key in saved_identity.keys() | wanted_identity.keys()
                if saved_identity.get(key) != wanted_identity.get(key)
            )
            raise CheckpointError(
                f"{resume_stem}: cannot resume, the run's {', '.join(changed)} "
                "differ from this command's"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        history = list(state["history"])
        best = state["best"]
        first_epoch = int(state["epoch"]) + 1
        logger.info("resuming after epoch %d", first_epoch - 1)

    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        for group in optimiser.param_groups:
            group["lr"] = learning_rate_at(config, epoch)
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 100_003 + epoch)
        model.train()
        sums: dict[str, float] = {}
        hits = total = 0
        batches = _batches(len(train_split), config.batch_size, rng, train_split.groups)
        if config.examples_per_epoch is not None:
            batches = _first_examples(batches, config.examples_per_epoch)
        n_batches = len(batches)
        for done, index in enumerate(batches, 1):
            x = _make(make_batch, train_split, index, rng).to(config.device)
            attributes = torch.as_tensor(
                train_split.attributes[index], dtype=torch.float32, device=config.device
            )
            loss, terms, batch_hits = _loss_terms(
                model, x, attributes, config, train_kwargs(epoch)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item()
            hits += int(batch_hits.sum())
            total += batch_hits.numel()
            if on_batch is not None:
                on_batch(done, n_batches)

        metrics: dict[str, Any] = {
            "epoch": epoch,
            "lr": learning_rate_at(config, epoch),
        }
        metrics.update({f"train_{k}": v / n_batches for k, v in sums.items()})
        metrics["train_acc"] = hits / max(total, 1)
        valid = evaluate_split(
            model, valid_split, config, make_batch, eval_kwargs or {}
        )
        metrics.update({f"valid_{k}": v for k, v in valid.items()})
        metrics["time_s"] = time.perf_counter() - started
        improved = best is None or metrics["valid_loss"] < best["valid_loss"]
        metrics["best"] = improved
        if improved:
            best = dict(metrics)
            if save_best is not None:
                save_best(model, best)
        history.append(metrics)
        logger.info(" ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))
        if on_epoch is not None:
            on_epoch(metrics)
        if resume_stem is not None:
            save_resume_state(
                resume_stem,
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "epoch": epoch,
                    "history": history,
                    "best": best,
                    "identity": json.dumps(run_identity or {}, sort_keys=True),
                },
            )
    return {"history": history, "best": best}


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Cosine decay from the full rate (epoch 1) to the final fraction (last)."""
    progress = (epoch - 1) / max(config.epochs - 1, 1)
    floor = config.learning_rate * config.final_lr_fraction
    return floor + (config.learning_rate - floor) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
