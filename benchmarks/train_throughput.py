"""Training throughput of the measure VAE on this machine, in measures per second.

Run on demand (not in CI)::

    .venv/bin/python benchmarks/train_throughput.py

It times forward + backward + Adam steps on real folk bars (the corpus is built or
loaded from the cache first) for each batch size, with the batched teacher-forced
decoder and with the sequential scheduled-sampling decoder, and prints each figure
as a ratio to the first one measured in the same run (these machines are shared and
absolute numbers drift).
"""

from __future__ import annotations

import argparse
import time

import torch

from melodyvae.core.losses import kl_divergence, total_ar_loss
from melodyvae.music.corpora import load_corpus
from melodyvae.music.model import MeasureVAE, MeasureVAEConfig
from melodyvae.music.tokens import Vocabulary
from melodyvae.music.training import FOUR_BEAT_METERS, corpus_split


def measures_per_second(
    model: MeasureVAE,
    tokens: torch.Tensor,
    attributes: torch.Tensor,
    batch_size: int,
    teacher_forcing: float,
    n_measures: int,
) -> float:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_steps = max(n_measures // batch_size, 3)
    started = time.perf_counter()
    for step in range(n_steps):
        index = torch.arange(step * batch_size, (step + 1) * batch_size) % len(tokens)
        x = tokens[index]
        output = model(x, teacher_forcing=teacher_forcing)
        loss = (
            model.reconstruction_loss(output, x)
            + 1e-3 * kl_divergence(output.mu, output.logvar)
            + total_ar_loss(output.z, attributes[index], [0, 1, 2, 3], 10.0)[0]
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return n_steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measures", type=int, default=5120)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()

    vocab = Vocabulary()
    split = corpus_split(load_corpus("folk", vocab=vocab), "train", FOUR_BEAT_METERS)
    tokens = torch.from_numpy(split.inputs)
    attributes = torch.as_tensor(split.attributes, dtype=torch.float32)
    torch.manual_seed(0)
    model = MeasureVAE(MeasureVAEConfig(vocab_size=vocab.size))
    # Warm-up so that the first measured row is not penalised.
    measures_per_second(model, tokens, attributes, 64, 1.0, 640)

    rows = []
    for batch_size in args.batch_sizes:
        for teacher_forcing in (1.0, 0.7):
            rate = measures_per_second(
                model, tokens, attributes, batch_size, teacher_forcing, args.measures
            )
            rows.append((batch_size, teacher_forcing, rate))
    reference = rows[0][2]
    print(f"threads={torch.get_num_threads()} measures={args.measures}")
    print("batch  teacher_forcing  measures/s  ratio")
    for batch_size, teacher_forcing, rate in rows:
        ratio = rate / reference
        print(f"{batch_size:5d}  {teacher_forcing:15.1f}  {rate:10.0f}  {ratio:5.2f}")


if __name__ == "__main__":
    main()
