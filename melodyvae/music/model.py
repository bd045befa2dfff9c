"""The hierarchical recurrent VAE over one measure.

Encoder: token embedding → 2-layer bidirectional GRU → the final states of all layers
and directions → two small MLPs giving the mean and log-variance of the latent code.

Decoder: the code initialises a *beat* GRU that runs one step per beat; each beat's
output initialises a *tick* GRU that emits that beat's six tokens, fed the previous
token's embedding and a projection of the beat output. With teacher forcing every
previous token is known, so the tick GRU runs over all beats of the batch in one
call; free-running decoding (generation, evaluation, scheduled sampling) goes token
by token.

A *meter-aware* model (``config.meters`` not empty) serves measures of several
grids: a learned meter embedding is appended to the encoder's final states and to
z wherever z enters the decoder (the beat GRU's initial state and its input at
every beat), and the beat GRU runs one step per beat of the measure's meter. Every
call takes measures of one length (meters with the same number of beats may share a
call): training batches are grouped by meter, so no padding reaches the model. A
model with empty ``config.meters`` is the single-grid model of ``n_beats`` beats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from melodyvae.music.tokens import SLOTS_PER_BEAT, canonical_meter, grid_for_meter


@dataclass(frozen=True)
class MeasureVAEConfig:
    """Architecture of :class:`MeasureVAE`; stored in every checkpoint.

    ``meters`` names the grids a meter-aware model knows, one canonical meter per
    grid (see :func:`~melodyvae.music.tokens.canonical_meter`); empty for a
    single-grid model, whose measures have ``n_beats`` beats. ``n_beats`` of a
    meter-aware model is its longest measure.
    """

    vocab_size: int
    n_beats: int = 4
    slots_per_beat: int = SLOTS_PER_BEAT
    embedding_dim: int = 10
    hidden_size: int = 128
    n_layers: int = 2
    latent_dim: int = 32
    mlp_size: int = 256
    beat_projection_dim: int = 32
    meters: tuple[str, ...] = ()
    meter_embedding_dim: int = 8

    def __post_init__(self) -> None:
        for meter in self.meters:
            if canonical_meter(meter) != meter:
                raise ValueError(f"model meter {meter} is not a canonical grid name")
            if grid_for_meter(meter).n_beats > self.n_beats:
                raise ValueError(f"meter {meter} has more than {self.n_beats} beats")
        if len(set(self.meters)) != len(self.meters):
            raise ValueError("a meter is listed twice")

    @property
    def n_slots(self) -> int:
        return self.n_beats * self.slots_per_beat

    @property
    def meter_aware(self) -> bool:
        return bool(self.meters)

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.meters:
            # Single-grid models are described as before meters existed.
            del data["meters"], data["meter_embedding_dim"]
        else:
            data["meters"] = list(self.meters)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> MeasureVAEConfig:
        data = dict(data)
        if "meters" in data:
            data["meters"] = tuple(data["meters"])
        return cls(**data)


@dataclass
class MeasureBatch:
    """Token measures (B, T) with the index (into ``config.meters``) of each one's
    meter, (B,); ``meter`` is None for a single-grid model."""

    tokens: torch.Tensor
    meter: torch.Tensor | None = None

    def to(self, device: str | torch.device) -> MeasureBatch:
        meter = None if self.meter is None else self.meter.to(device)
        return MeasureBatch(self.tokens.to(device), meter)


def _unpack(x: torch.Tensor | MeasureBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(x, MeasureBatch):
        return x.tokens, x.meter
    return x, None


@dataclass
class VAEOutput:
    """What a forward pass gives: per-slot logits and the latent code."""

    logits: torch.Tensor  # (B, T, V)
    mu: torch.Tensor  # (B, Z)
    logvar: torch.Tensor  # (B, Z)
    z: torch.Tensor  # (B, Z), the code the decoder used


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, n_hidden), nn.SELU(), nn.Linear(n_hidden, n_out)
    )


class MeasureVAE(nn.Module):
    """VAE over measures of ``config.n_slots`` tokens (ids below ``vocab_size``)."""

    def __init__(self, config: MeasureVAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # One extra embedding row for the decoder's start symbol (id = vocab_size).
        self.embedding = nn.Embedding(c.vocab_size + 1, c.embedding_dim)
        self.encoder = nn.GRU(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.n_layers,
            bidirectional=True,
            batch_first=True,
        )
        meter_dim = c.meter_embedding_dim if c.meter_aware else 0
        if c.meter_aware:
            self.meter_embedding = nn.Embedding(len(c.meters), meter_dim)
            # Beats of each meter index (not a weight: rebuilt from the config).
            self._meter_beats = np.array(
                [grid_for_meter(m).n_beats for m in c.meters], dtype=np.int64
            )
        n_states = 2 * c.n_layers * c.hidden_size + meter_dim
        self.to_mu = _mlp(n_states, c.mlp_size, c.latent_dim)
        self.to_logvar = _mlp(n_states, c.mlp_size, c.latent_dim)

        self.latent_to_beat_state = nn.Linear(
            c.latent_dim + meter_dim, c.n_layers * c.hidden_size
        )
        self.beat_rnn = nn.GRU(
            c.latent_dim + meter_dim,
            c.hidden_size,
            num_layers=c.n_layers,
            batch_first=True,
        )
        self.beat_to_tick_state = nn.Linear(c.hidden_size, c.n_layers * c.hidden_size)
        self.beat_projection = nn.Linear(c.hidden_size, c.beat_projection_dim)
        self.tick_rnn = nn.GRU(
            c.embedding_dim + c.beat_projection_dim,
            c.hidden_size,
            num_layers=c.n_layers,
            batch_first=True,
        )
        self.to_logits = nn.Linear(c.hidden_size, c.vocab_size)

    # -- encoder ---------------------------------------------------------------

    def _check_meter(self, meter: torch.Tensor | None) -> None:
        if self.config.meter_aware and meter is None:
            raise ValueError("a meter-aware model needs the meter of each measure")
        if not self.config.meter_aware and meter is not None:
            raise ValueError("this single-grid model takes no meters")

    def n_beats_of(self, meter: torch.Tensor | None) -> int:
        """Beats of the measures of one call (they must all have as many)."""
        self._check_meter(meter)
        if meter is None:
            return self.config.n_beats
        beats = np.unique(self._meter_beats[meter.cpu().numpy()])
        if len(beats) != 1:
            raise ValueError("measures of one call must have the same number of beats")
        return int(beats[0])

    def encode(
        self, tokens: torch.Tensor, meter: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``tokens`` (B, T) → (B, Z), (B, Z).

        ``meter`` (B,) gives each measure's meter index (meter-aware models only).
        """
        self._check_meter(meter)
        embedded = self.embedding(tokens)  # (B, T, E)
        _, final = self.encoder(embedded)  # (2·layers, B, H)
        states = final.transpose(0, 1).reshape(tokens.shape[0], -1)  # (B, 2·L·H)
        if meter is not None:
            states = torch.cat([states, self.meter_embedding(meter)], dim=1)
        return self.to_mu(states), self.to_logvar(states)

    # -- decoder ---------------------------------------------------------------

    def _initial_state(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        state = torch.tanh(layer(x))  # (N, L·H)
        return state.view(-1, c.n_layers, c.hidden_size).transpose(0, 1).contiguous()

    def _beats(self, z: torch.Tensor, meter: torch.Tensor | None) -> torch.Tensor:
        """Beat GRU outputs (B, n_beats, H): z (with the meter embedding of a
        meter-aware model) is the input at every beat of the measure's meter."""
        n_beats = self.n_beats_of(meter)
        if meter is not None:
            z = torch.cat([z, self.meter_embedding(meter)], dim=1)
        h0 = self._initial_state(self.latent_to_beat_state, z)  # (L, B, H)
        inputs = z[:, None, :].expand(-1, n_beats, -1)  # (B, n_beats, Z)
        beats, _ = self.beat_rnn(inputs.contiguous(), h0)
        return beats

    def decode_teacher_forced(
        self,
        z: torch.Tensor,
        targets: torch.Tensor,
        meter: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, V) with every previous token taken from ``targets`` (B, T)."""
        c = self.config
        batch = z.shape[0]
        beats = self._beats(z, meter)  # (B, nb, H)
        n_beats = beats.shape[1]
        if targets.shape[1] != n_beats * c.slots_per_beat:
            raise ValueError(
                f"measures of {targets.shape[1]} tokens for {n_beats} beats"
            )
        start = torch.full(
            (batch, 1), c.vocab_size, dtype=targets.dtype, device=z.device
        )
        previous = torch.cat([start, targets[:, :-1]], dim=1)  # (B, T)
        previous = previous.reshape(batch * n_beats, c.slots_per_beat)
        flat_beats = beats.reshape(batch * n_beats, -1)  # (B·nb, H)
        projection = self.beat_projection(flat_beats)[:, None, :]  # (B·nb, 1, P)
        inputs = torch.cat(
            [
                self.embedding(previous),
                projection.expand(-1, c.slots_per_beat, -1),
            ],
            dim=2,
        )  # (B·nb, 6, E+P)
        h0 = self._initial_state(self.beat_to_tick_state, flat_beats)  # (L, B·nb, H)
        outputs, _ = self.tick_rnn(inputs, h0)  # (B·nb, 6, H)
        logits = self.to_logits(outputs)  # (B·nb, 6, V)
        return logits.view(batch, n_beats * c.slots_per_beat, -1)

    def decode_free(
        self,
        z: torch.Tensor,
        meter: torch.Tensor | None = None,
        *,
        temperature: float = 0.0,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
        generator: torch.Generator | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode token by token; returns tokens (B, T) and logits (B, T, V).

        ``temperature`` 0 takes the argmax; above 0 samples from the softmax at that
        temperature, with ``uniforms`` (B, T) in [0, 1) when given (the token whose
        cumulative probability first exceeds the row's number at that slot, so a
        row's sample does not depend on the other rows), else with ``generator``.
        With ``targets`` and ``teacher_forcing`` p, each step feeds the true
        previous token with probability p (scheduled sampling).
        """
        c = self.config
        batch = z.shape[0]
        beats = self._beats(z, meter)  # (B, nb, H)
        previous = torch.full((batch,), c.vocab_size, dtype=torch.long, device=z.device)
        all_logits, all_tokens = [], []
        for beat in range(beats.shape[1]):
            beat_out = beats[:, beat]  # (B, H)
            state = self._initial_state(self.beat_to_tick_state, beat_out)
            projection = self.beat_projection(beat_out)  # (B, P)
            for _ in range(c.slots_per_beat):
                step_input = torch.cat([self.embedding(previous), projection], dim=1)
                output, state = self.tick_rnn(step_input[:, None, :], state)
                logits = self.to_logits(output[:, 0])  # (B, V)
                if temperature > 0 and uniforms is not None:
                    token = _inverse_cdf(
                        F.softmax(logits / temperature, dim=1),
                        uniforms[:, len(all_tokens)],
                    )
                elif temperature > 0:
                    probs = F.softmax(logits / temperature, dim=1)
                    token = torch.multinomial(probs, 1, generator=generator)[:, 0]
                else:
                    token = logits.argmax(dim=1)
                all_logits.append(logits)
                all_tokens.append(token)
                previous = token
                if targets is not None and teacher_forcing > 0:
                    position = len(all_tokens) - 1
                    use_truth = (
                        torch.rand(batch, device=z.device, generator=generator)
                        < teacher_forcing
                    )
                    previous = torch.where(use_truth, targets[:, position], token)
        return torch.stack(all_tokens, dim=1), torch.stack(all_logits, dim=1)

    # -- whole model -----------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor | MeasureBatch,
        *,
        teacher_forcing: float = 1.0,
        sample_latent: bool = True,
    ) -> VAEOutput:
        """Encode the measures ``x`` (tokens (B, T), or a :class:`MeasureBatch` for
        a meter-aware model), draw z, decode.

        ``teacher_forcing`` 1 uses the batched teacher-forced decoder; below 1 runs
        the sequential decoder with scheduled sampling. ``sample_latent`` False
        decodes the posterior mean (evaluation).
        """
        tokens, meter = _unpack(x)
        mu, logvar = self.encode(tokens, meter)
        if sample_latent:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        if teacher_forcing >= 1.0:
            logits = self.decode_teacher_forced(z, tokens, meter)
        else:
            _, logits = self.decode_free(
                z, meter, targets=tokens, teacher_forcing=teacher_forcing
            )
        return VAEOutput(logits=logits, mu=mu, logvar=logvar, z=z)

    @staticmethod
    def reconstruction_loss(
        output: VAEOutput, x: torch.Tensor | MeasureBatch
    ) -> torch.Tensor:
        """Cross-entropy per token, averaged over all tokens of the batch."""
        tokens, _ = _unpack(x)
        return F.cross_entropy(output.logits.flatten(0, 1), tokens.flatten())

    @staticmethod
    def reconstruction_hits(
        output: VAEOutput, x: torch.Tensor | MeasureBatch
    ) -> torch.Tensor:
        """Per-token correctness (B, T) bool of the argmax of the logits."""
        tokens, _ = _unpack(x)
        return output.logits.argmax(dim=2) == tokens

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Tokens (B,) drawn from ``probs`` (B, V) with numbers ``uniforms`` (B,) in
    [0, 1): the first token whose cumulative probability exceeds the number. The
    number is scaled by the row's total (which rounding leaves a hair off 1), and
    a token of probability 0 is never drawn."""
    cumulative = probs.cumsum(dim=1)
    threshold = uniforms[:, None] * cumulative[:, -1:]
    token = (cumulative <= threshold).sum(dim=1)
    last_possible = probs.shape[1] - 1 - (probs.flip(1) > 0).int().argmax(dim=1)
    return torch.minimum(token, last_possible)
