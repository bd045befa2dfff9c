"""Training the image AR-VAE, and loading trained image models.

The loss, loop, resuming and checkpoints are :mod:`melodyvae.core`'s; this module
picks the data set, the network size and the published image settings (β = 1,
γ = 10, δ = 1), and stores what a checkpoint needs to rebuild its model and its
data: the model config, the data set's name and identity, the attribute names
with their latent dims, the training settings and command, the held-out metrics
and, per regularised dim, the range the held-out codes span (the default range of
a traversal).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodyvae.core.checkpoint import checkpoint_stem, load_checkpoint, save_checkpoint
from melodyvae.core.losses import ARConfig
from melodyvae.core.trainer import TrainConfig, train
from melodyvae.errors import CheckpointError, DataError, MelodyVAEError
from melodyvae.images.datasets import ImageDataset, load_dataset
from melodyvae.images.model import ImageVAE, ImageVAEConfig

logger = logging.getLogger(__name__)

MODEL_KIND = "melodyvae.images.ImageVAE"


@dataclass(frozen=True)
class DatasetDefaults:
    """The network and schedule a data set trains with unless told otherwise."""

    latent_dim: int
    channels: tuple[int, ...]
    hidden_size: int
    epochs: int
    examples_per_epoch: int | None


DEFAULTS = {
    # 737,280 sprites: an "epoch" is a fresh 32,768 of the training split.
    "sprites": DatasetDefaults(10, (32, 32, 64, 64), 128, 60, 32768),
    "digits": DatasetDefaults(16, (32, 64, 64), 256, 100, None),
}
# The published image settings.
IMAGE_LOSS = ARConfig(beta=1.0, gamma=10.0, delta=1.0)


@dataclass
class TrainedImageModel:
    """A model rebuilt from a checkpoint, with its attributes and data set."""

    model: ImageVAE
    dataset: str
    attribute_names: tuple[str, ...]
    attribute_dims: dict[str, int]
    meta: dict[str, Any]
    path: Path

    @property
    def reg_dims(self) -> list[int]:
        return [self.attribute_dims[name] for name in self.attribute_names]


def encode_images(
    model: ImageVAE, images: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Posterior means (N, Z) float32 of grey images (N, H, W), 0 to 1."""
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = torch.from_numpy(
                np.ascontiguousarray(images[start : start + batch_size, None])
            ).float()
            mu, _ = model.encode(chunk)
            parts.append(mu.numpy())
    if not parts:
        return np.zeros((0, model.config.latent_dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def decode_codes(
    model: ImageVAE, codes: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Pixel probabilities (N, H, W) float32 of latent codes (N, Z)."""
    model.eval()
    size = model.config.image_size
    parts = []
    with torch.no_grad():
        for start in range(0, len(codes), batch_size):
            chunk = torch.as_tensor(codes[start : start + batch_size]).float()
            parts.append(torch.sigmoid(model.decode(chunk))[:, 0].numpy())
    if not parts:
        return np.zeros((0, size, size), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def split_images(dataset: ImageDataset, split: str) -> np.ndarray:
    """Grey images (N, H, W) float32 of one split, in order."""
    return dataset.images(dataset.splits[split].inputs)


def latent_ranges(latents: np.ndarray, reg_dims: list[int], names) -> dict:
    """Per attribute, the 1st and 99th percentiles of its dim over ``latents``."""
    return {
        name: [
            float(np.percentile(latents[:, d], 1)),
            float(np.percentile(latents[:, d], 99)),
        ]
        for name, d in zip(names, reg_dims, strict=True)
    }


def train_image_model(
    dataset_name: str,
    out: str | Path,
    config: TrainConfig,
    *,
    data: str | Path | None = None,
    latent_dim: int | None = None,
    max_examples: int | None = None,
    resume: bool = False,
    command: str = "",
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train on a data set and write the best checkpoint to ``out``.

    ``config.reg_dims`` is replaced by the first L dims (one per attribute). The
    held-out metrics (:func:`melodyvae.images.evaluation.evaluate_images` on the
    test split) of the best checkpoint are stored in its JSON and returned.
    """
    from melodyvae.images.evaluation import evaluate_images

    def stage(text: str) -> None:
        if on_stage is not None:
            on_stage(text)

    defaults = DEFAULTS.get(dataset_name)
    if defaults is None:
        raise DataError(f"{dataset_name}: unknown image data set")
    stage("loading data")
    dataset = load_dataset(dataset_name, data, max_examples=max_examples)
    n_attributes = len(dataset.attribute_names)
    latent_dim = latent_dim or defaults.latent_dim
    if latent_dim < n_attributes:
        raise MelodyVAEError(
            f"latent size {latent_dim} is below the {n_attributes} regularised "
            "attributes"
        )
    for split in ("train", "valid", "test"):
        if len(dataset.splits[split]) < 2:
            raise DataError(
                f"{dataset_name}: {len(dataset.splits[split])} examples in the "
                f"{split} split, at least 2 needed"
            )
    reg_dims = tuple(range(n_attributes))
    config = replace(config, reg_dims=reg_dims)
    model_config = ImageVAEConfig(
        image_size=dataset.image_size,
        latent_dim=latent_dim,
        channels=defaults.channels,
        hidden_size=defaults.hidden_size,
    )
    torch.manual_seed(config.seed)
    model = ImageVAE(model_config)
    logger.info(
        "%s: %s examples; %d parameters",
        dataset_name,
        " ".join(f"{s}={len(v)}" for s, v in dataset.splits.items()),
        model.n_parameters(),
    )
    stem = checkpoint_stem(out)
    attribute_dims = dict(zip(dataset.attribute_names, reg_dims, strict=True))
    meta: dict[str, Any] = {
        "model": MODEL_KIND,
        "model_config": model_config.to_dict(),
        "dataset": dataset_name,
        "attributes": [
            {"name": n, "dim": d, "unit": dataset.attribute_units.get(n, "")}
            for n, d in attribute_dims.items()
        ],
        "data": dataset.identity,
        "training": {**config.to_dict(), "command": command},
    }

    def save_best(current: torch.nn.Module, best: dict[str, Any]) -> None:
        save_checkpoint(stem, current.state_dict(), {**meta, "best_epoch": best})

    stage("training")
    result = train(
        model,
        dataset.splits["train"],
        dataset.splits["valid"],
        config,
        dataset.make_batch,
        eval_kwargs={"sample_latent": False},
        save_best=save_best,
        resume_stem=str(stem),
        resume=resume,
        run_identity={
            "data": dataset.identity,
            "model": model_config.to_dict(),
            "settings": {
                k: v
                for k, v in config.to_dict().items()
                if k not in ("epochs", "device")
            },
        },
        on_batch=on_batch,
        on_epoch=on_epoch,
    )

    stage("held-out metrics")
    trained = load_image_model(stem)
    metrics, latents = evaluate_images(trained, dataset, "test")
    final_meta = {
        **trained.meta,
        "test_metrics": metrics,
        "latent_ranges": latent_ranges(
            latents, trained.reg_dims, trained.attribute_names
        ),
        "history": result["history"],
    }
    final_meta.pop("format_version", None)
    save_checkpoint(stem, trained.model.state_dict(), final_meta)
    return {**result, "test_metrics": metrics, "checkpoint": str(stem)}


def load_image_model(path: str | Path) -> TrainedImageModel:
    """Rebuild an image model from its checkpoint (STEM, STEM.json or
    STEM.safetensors); :class:`CheckpointError` if it is not one."""
    stem = checkpoint_stem(path)
    state, meta = load_checkpoint(stem)
    if meta.get("model") != MODEL_KIND:
        raise CheckpointError(f"{stem}.json: not an image model ({meta.get('model')})")
    try:
        config = ImageVAEConfig.from_dict(meta["model_config"])
        names = tuple(a["name"] for a in meta["attributes"])
        dims = {a["name"]: int(a["dim"]) for a in meta["attributes"]}
        if any(not 0 <= d < config.latent_dim for d in dims.values()):
            raise ValueError("an attribute dim lies outside the latent code")
        model = ImageVAE(config)
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{stem}: inconsistent checkpoint ({error})") from None
    model.eval()
    return TrainedImageModel(model, str(meta["dataset"]), names, dims, meta, stem)


def model_dataset(trained: TrainedImageModel) -> ImageDataset:
    """The data set ``trained`` was trained on, rebuilt (with the same subset)."""
    identity = trained.meta.get("data", {})
    data = identity.get("path")
    dataset = load_dataset(
        trained.dataset, data, max_examples=identity.get("max_examples")
    )
    if identity.get("sha1") and dataset.identity.get("sha1") != identity["sha1"]:
        logger.warning(
            "the %s data differ from those %s was trained on",
            trained.dataset,
            trained.path,
        )
    return dataset
