"""The hierarchical recurrent VAE over one measure.

Encoder: token embedding → 2-layer bidirectional GRU → the final states of all layers
and directions → two small MLPs giving the mean and log-variance of the latent code.

Decoder: the code initialises a *beat* GRU that runs one step per beat; each beat's
output initialises a *tick* GRU that emits that beat's six tokens, fed the previous
token's embedding and a projection of the beat output. With teacher forcing every
previous token is known, so the tick GRU runs over all beats of the batch in one
call; free-running decoding (generation, evaluation, scheduled sampling) goes token
by token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from melodyvae.music.tokens import SLOTS_PER_BEAT


@dataclass(frozen=True)
class MeasureVAEConfig:
    """Architecture of :class:`MeasureVAE`; stored in every checkpoint."""

    vocab_size: int
    n_beats: int = 4
    slots_per_beat: int = SLOTS_PER_BEAT
    embedding_dim: int = 10
    hidden_size: int = 128
    n_layers: int = 2
    latent_dim: int = 32
    mlp_size: int = 256
    beat_projection_dim: int = 32

    @property
    def n_slots(self) -> int:
        return self.n_beats * self.slots_per_beat

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MeasureVAEConfig:
        return cls(**data)


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
        n_states = 2 * c.n_layers * c.hidden_size
        self.to_mu = _mlp(n_states, c.mlp_size, c.latent_dim)
        self.to_logvar = _mlp(n_states, c.mlp_size, c.latent_dim)

        self.latent_to_beat_state = nn.Linear(c.latent_dim, c.n_layers * c.hidden_size)
        self.beat_rnn = nn.GRU(
            c.latent_dim, c.hidden_size, num_layers=c.n_layers, batch_first=True
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

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``tokens`` (B, T) → (B, Z), (B, Z)."""
        embedded = self.embedding(tokens)  # (B, T, E)
        _, final = self.encoder(embedded)  # (2·layers, B, H)
        states = final.transpose(0, 1).reshape(tokens.shape[0], -1)  # (B, 2·L·H)
        return self.to_mu(states), self.to_logvar(states)

    # -- decoder ---------------------------------------------------------------

    def _initial_state(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        state = torch.tanh(layer(x))  # (N, L·H)
        return state.view(-1, c.n_layers, c.hidden_size).transpose(0, 1).contiguous()

    def _beats(self, z: torch.Tensor) -> torch.Tensor:
        """Beat GRU outputs (B, n_beats, H): z is the input at every beat."""
        c = self.config
        h0 = self._initial_state(self.latent_to_beat_state, z)  # (L, B, H)
        inputs = z[:, None, :].expand(-1, c.n_beats, -1)  # (B, n_beats, Z)
        beats, _ = self.beat_rnn(inputs.contiguous(), h0)
        return beats

    def decode_teacher_forced(
        self, z: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, T, V) with every previous token taken from ``targets`` (B, T)."""
        c = self.config
        batch = z.shape[0]
        beats = self._beats(z)  # (B, nb, H)
        start = torch.full(
            (batch, 1), c.vocab_size, dtype=targets.dtype, device=z.device
        )
        previous = torch.cat([start, targets[:, :-1]], dim=1)  # (B, T)
        previous = previous.view(batch * c.n_beats, c.slots_per_beat)
        flat_beats = beats.reshape(batch * c.n_beats, -1)  # (B·nb, H)
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
        return logits.view(batch, c.n_slots, -1)

    def decode_free(
        self,
        z: torch.Tensor,
        *,
        temperature: float = 0.0,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode token by token; returns tokens (B, T) and logits (B, T, V).

        ``temperature`` 0 takes the argmax; above 0 samples from the softmax at that
        temperature. With ``targets`` and ``teacher_forcing`` p, each step feeds the
        true previous token with probability p (scheduled sampling).
        """
        c = self.config
        batch = z.shape[0]
        beats = self._beats(z)  # (B, nb, H)
        previous = torch.full((batch,), c.vocab_size, dtype=torch.long, device=z.device)
        all_logits, all_tokens = [], []
        for beat in range(c.n_beats):
            beat_out = beats[:, beat]  # (B, H)
            state = self._initial_state(self.beat_to_tick_state, beat_out)
            projection = self.beat_projection(beat_out)  # (B, P)
            for _ in range(c.slots_per_beat):
                step_input = torch.cat([self.embedding(previous), projection], dim=1)
                output, state = self.tick_rnn(step_input[:, None, :], state)
                logits = self.to_logits(output[:, 0])  # (B, V)
                if temperature > 0:
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
        tokens: torch.Tensor,
        *,
        teacher_forcing: float = 1.0,
        sample_latent: bool = True,
    ) -> VAEOutput:
        """Encode ``tokens`` (B, T), draw z, decode.

        ``teacher_forcing`` 1 uses the batched teacher-forced decoder; below 1 runs
        the sequential decoder with scheduled sampling. ``sample_latent`` False
        decodes the posterior mean (evaluation).
        """
        mu, logvar = self.encode(tokens)
        if sample_latent:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        if teacher_forcing >= 1.0:
            logits = self.decode_teacher_forced(z, tokens)
        else:
            _, logits = self.decode_free(
                z, targets=tokens, teacher_forcing=teacher_forcing
            )
        return VAEOutput(logits=logits, mu=mu, logvar=logvar, z=z)

    @staticmethod
    def reconstruction_loss(output: VAEOutput, tokens: torch.Tensor) -> torch.Tensor:
        """Cross-entropy per token, averaged over all tokens of the batch."""
        return F.cross_entropy(output.logits.flatten(0, 1), tokens.flatten())

    @staticmethod
    def reconstruction_hits(output: VAEOutput, tokens: torch.Tensor) -> torch.Tensor:
        """Per-token correctness (B, T) bool of the argmax of the logits."""
        return output.logits.argmax(dim=2) == tokens

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
