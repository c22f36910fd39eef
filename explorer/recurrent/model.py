"""A recurrent-depth language model (Geiping et al. 2025, "Huginn"), written in plain torch.

prelude (``n_layers_in_prelude`` blocks) → core (``n_layers_in_recurrent_block`` blocks) applied
``r`` times, the embedded input injected at every step through ``adapter`` on
``concat(state, embedded input)`` → coda (``n_layers_in_coda`` blocks) → ``ln_f`` → ``lm_head``.
The state starts random (truncated normal). Module names, parameter shapes, config field names and
the arithmetic mirror the public Huginn-0125 release (``raven_modeling_minimal.py``): sandwich
blocks with four RMSNorms, a fused ``Wqkv`` with ``qk_bias``, interleaved ("complex-like") rotary
embeddings, a gated SiLU MLP with one fused ``fc``, input embeddings scaled by √d, ``ln_f`` applied
to the final state before the coda and again after it. So a tiny random instance stands for the
3.5B checkpoint in tests, and :func:`load_huginn` reads the real weights without remote code.

Forward (``model(input_ids, num_steps=...)``):

* ``num_steps=r`` (int): ``r`` core iterations, under the ambient autograd mode;
* ``num_steps=(n, k)``: ``n`` iterations without gradient, then ``k`` with (truncated backprop,
  Huginn's training recipe);
* ``num_steps=None``: training: ``(n, k)`` sampled by :func:`sample_recurrence`; eval:
  ``config.mean_recurrence``.

There is no KV cache: every call recomputes the whole sequence (cheap for the small models this
project trains; the engine's adaptive exit is defined on whole-sequence passes, see
:mod:`explorer.recurrent.engine`). Padding must be on the right (causal attention then needs no mask).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from ..errors import InputError, ModelNotFoundError, SaveFileError

MODEL_TYPE = "latent_recurrent"
HUGINN_MODEL_TYPE = "huginn_raven"


class RecurrentConfig(PretrainedConfig):
    """Configuration with Huginn-0125's field names (defaults: a tiny model for ProsQA on CPU).

    ``init_state_std``: standard deviation of the random initial state *before* the √d scale
    (``None``: Huginn's ``sqrt(2 / (5 d))``, i.e. about 0.63 after scaling)."""

    model_type = MODEL_TYPE
    attribute_map = {"num_attention_heads": "n_heads", "hidden_size": "n_embd", "num_hidden_layers": "n_layers",
                     "max_position_embeddings": "block_size"}

    def __init__(self, n_embd: int = 128, n_heads: int = 4, n_layers: int | None = None, block_size: int = 1024,
                 vocab_size: int = 256, padding_multiple: int = 1, tie_embeddings: bool = True,
                 intermediate_size: int = 256, bias: bool = False, norm_eps: float = 1e-6,
                 n_layers_in_prelude: int = 1, n_layers_in_recurrent_block: int = 2, n_layers_in_coda: int = 1,
                 mean_recurrence: int = 8, mean_backprop_depth: int = 4, qk_bias: bool = True,
                 rope_base: float = 50_000.0, init_state_std: float | None = None,
                 injection_type: str = "linear", state_init: str = "like-init",
                 sampling_scheme: str = "poisson-lognormal-filling", **kwargs: Any) -> None:
        self.n_embd, self.n_heads = int(n_embd), int(n_heads)
        self.n_layers_in_prelude = int(n_layers_in_prelude)
        self.n_layers_in_recurrent_block = int(n_layers_in_recurrent_block)
        self.n_layers_in_coda = int(n_layers_in_coda)
        self.n_layers = int(n_layers) if n_layers is not None else (
            self.n_layers_in_prelude + self.n_layers_in_recurrent_block + self.n_layers_in_coda)
        self.block_size = int(block_size)
        self.vocab_size = int(vocab_size)
        self.padding_multiple = int(padding_multiple or 1)
        self.padded_vocab_size = int(math.ceil(self.vocab_size / self.padding_multiple) * self.padding_multiple)
        self.tie_embeddings = bool(tie_embeddings)
        self.intermediate_size = int(intermediate_size)
        self.bias, self.norm_eps, self.qk_bias = bool(bias), float(norm_eps), bool(qk_bias)
        self.mean_recurrence, self.mean_backprop_depth = int(mean_recurrence), int(mean_backprop_depth)
        self.rope_base = float(rope_base)
        self.init_state_std = init_state_std
        self.injection_type, self.state_init, self.sampling_scheme = injection_type, state_init, sampling_scheme
        kwargs.pop("tie_word_embeddings", None)
        super().__init__(tie_word_embeddings=self.tie_embeddings, **kwargs)

    def check(self) -> None:
        if self.n_embd % self.n_heads or (self.n_embd // self.n_heads) % 2:
            raise InputError(f"n_embd ({self.n_embd}) must split into n_heads ({self.n_heads}) heads of even size.")
        if self.n_layers_in_recurrent_block < 1:
            raise InputError("the core needs at least one block (n_layers_in_recurrent_block >= 1).")
        if self.injection_type != "linear":
            raise InputError(f"only injection_type='linear' (Huginn-0125's adapter) is implemented, got "
                             f"{self.injection_type!r}.")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_heads

    @property
    def state_std(self) -> float:
        return float(self.init_state_std) if self.init_state_std is not None else math.sqrt(2 / (5 * self.n_embd))

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.n_embd)


class HuginnConfig(RecurrentConfig):
    """The same configuration under Huginn-0125's ``model_type`` so its ``config.json`` loads
    with this project's code (no ``trust_remote_code``)."""

    model_type = HUGINN_MODEL_TYPE

    def __init__(self, **kwargs: Any) -> None:  # explicit: transformers would otherwise generate one
        super().__init__(**kwargs)


# -- blocks -------------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rotary_table(head_dim: int, end: int, theta: float) -> torch.Tensor:
    """(1, end, 1, head_dim/2, 2): cos and sin of each position × frequency (Huginn's layout)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    f = torch.outer(torch.arange(end, dtype=torch.float32), inv)
    return torch.stack([f.cos()[None, :, None, :], f.sin()[None, :, None, :]], dim=4)


def rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x0, x1), (x2, x3) … of ``x`` (…, S, H, hd) by ``table`` (…, S, 1, hd/2, 2)."""
    xp = x.unflatten(-1, (-1, 2)).float()
    c, s = table[..., 0], table[..., 1]
    return torch.stack([xp[..., 0] * c - xp[..., 1] * s, xp[..., 1] * c + xp[..., 0] * s], -1).flatten(-2).type_as(x)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate interleaved pairs (x0, x1), (x2, x3) … of q and k (B, S, H, hd)."""
    q2, k2 = torch.split(rotate(torch.cat([q, k], dim=2), table), q.shape[2], dim=2)
    return q2, k2


def row_slots(rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, int]:
    """For positions in rows ``rows`` (N,): each one's slot among its row's positions, and the most in a row."""
    counts = torch.bincount(rows, minlength=n_rows)
    sorted_rows, perm = rows.sort(stable=True)
    slot = torch.empty_like(rows)
    slot[perm] = torch.arange(len(rows), device=rows.device) - (counts.cumsum(0) - counts)[sorted_rows]
    return slot, int(counts.max()) if len(rows) else 0


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = cfg.n_heads, cfg.head_dim
        self.Wqkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.use_qk_bias = cfg.qk_bias
        if cfg.qk_bias:
            self.qk_bias = nn.Parameter(torch.zeros(2, 1, self.n_head, self.head_dim))
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def _qkv(self, x: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys (biased and rotated) and values, each (B, H, S, hd)."""
        B, S, E = x.shape
        q, k, v = self.Wqkv(x).split(E, dim=2)
        q, k, v = (t.view(B, S, self.n_head, self.head_dim) for t in (q, k, v))
        if self.use_qk_bias:
            qb, kb = self.qk_bias.split(1, dim=0)
            q, k = (q + qb).to(q.dtype), (k + kb).to(q.dtype)
        q, k = apply_rotary(q, k, table)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        B, S, E = x.shape
        y = nn.functional.scaled_dot_product_attention(*self._qkv(x, table), is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, S, E))

    def weights(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, H, S, S): the causal attention probabilities :meth:`forward` mixes the values with
        (what the fused kernel computes inside; for reading where a head looks)."""
        q, k, _ = self._qkv(x, table)
        S = x.shape[1]
        scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(self.head_dim)
        future = torch.ones(S, S, dtype=torch.bool, device=x.device).triu(1)
        return scores.masked_fill(future, float("-inf")).softmax(-1)

    def at(self, x: torch.Tensor, table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The output at ``positions`` (N, 2: row, position) only, (N, E): queries there, keys and values
        everywhere, each query seeing its row up to its position (what :meth:`forward` gives there)."""
        B, S, E = x.shape
        rows, cols = positions[:, 0], positions[:, 1]
        W = self.Wqkv.weight
        q = (x[rows, cols] @ W[:E].T).view(-1, self.n_head, self.head_dim)
        k, v = (t.view(B, S, self.n_head, self.head_dim) for t in (x @ W[E:].T).split(E, dim=2))
        if self.use_qk_bias:
            qb, kb = self.qk_bias.split(1, dim=0)
            q, k = (q + qb[0]).to(q.dtype), (k + kb).to(q.dtype)
        q, k = rotate(q, table[0, cols]), rotate(k, table)
        slot, width = row_slots(rows, B)   # the queries of each row side by side, padded to the fullest row
        qs = q.new_zeros(B, width, self.n_head, self.head_dim)
        qs[rows, slot] = q
        upto = torch.zeros(B, width, dtype=torch.long, device=x.device)
        upto[rows, slot] = cols
        mask = torch.arange(S, device=x.device) <= upto[:, :, None]
        y = nn.functional.scaled_dot_product_attention(qs.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                       attn_mask=mask[:, None])
        return self.proj(y.transpose(1, 2)[rows, slot].reshape(-1, E))


class GatedMLP(nn.Module):
    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 2 * cfg.intermediate_size, bias=cfg.bias)
        self.proj = nn.Linear(cfg.intermediate_size, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc(x).chunk(2, dim=-1)
        return self.proj(nn.functional.silu(a) * b)


class SandwichBlock(nn.Module):
    """Huginn's block: x = n2(attn(n1(x)) + x); x = n4(mlp(n3(x)) + x)."""

    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.norm_1 = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.norm_2 = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.mlp = GatedMLP(cfg)
        self.norm_3 = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.norm_4 = RMSNorm(cfg.n_embd, cfg.norm_eps)

    def forward(self, x: torch.Tensor, table: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S, E), or with ``positions`` (N, 2: row, position) the output there only, (N, E)."""
        if positions is None:
            x = self.norm_2(self.attn(self.norm_1(x), table) + x)
        else:
            x = self.norm_2(self.attn.at(self.norm_1(x), table, positions) + x[positions[:, 0], positions[:, 1]])
        return self.norm_4(self.mlp(self.norm_3(x)) + x)


# -- the model ----------------------------------------------------------------------------------------
@dataclass
class RecurrentOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    latent_states: torch.Tensor | None = None       # ln_f(final state): what the coda reads
    states: tuple[torch.Tensor, ...] | None = None   # with return_states: raw state after 0, 1, …, r iterations
    num_steps_no_grad: int | None = None
    num_steps_with_grad: int | None = None


def sample_recurrence(mean_recurrence: int, backprop_depth: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """Huginn's training draw: ``(n, k)`` = iterations without and with gradient.

    rate ~ LogNormal(log r̄ − σ²/2, σ=0.5); p = Poisson(rate) + 1; k = min(p, backprop_depth);
    n = max(p − backprop_depth, 0). The mean of n + k is about r̄ + 1 − … (Huginn's
    "poisson-lognormal-filling")."""
    t = max(mean_recurrence - backprop_depth, 0)
    s = backprop_depth
    sigma = 0.5
    mu = math.log(max(t + s, 1)) - sigma ** 2 / 2
    rate = torch.zeros(1).log_normal_(mean=mu, std=sigma, generator=generator)
    p = int(torch.poisson(rate, generator=generator).item()) + 1
    return max(p - s, 0), min(s, p)


class RecurrentForCausalLM(PreTrainedModel):
    """The recurrent-depth causal LM (see the module docs)."""

    config_class = RecurrentConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}
    _keys_to_ignore_on_load_unexpected = [r"freqs_cis"]
    _no_split_modules = ["SandwichBlock"]
    _supports_sdpa = True

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__(config)
        config.check()
        c = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.padded_vocab_size, c.n_embd),
            prelude=nn.ModuleList(SandwichBlock(c) for _ in range(c.n_layers_in_prelude)),
            adapter=nn.Linear(2 * c.n_embd, c.n_embd, bias=c.bias),
            core_block=nn.ModuleList(SandwichBlock(c) for _ in range(c.n_layers_in_recurrent_block)),
            coda=nn.ModuleList(SandwichBlock(c) for _ in range(c.n_layers_in_coda)),
            ln_f=RMSNorm(c.n_embd, c.norm_eps),
        ))
        self.lm_head = nn.Linear(c.n_embd, c.padded_vocab_size, bias=False)
        self.register_buffer("rotary", rotary_table(c.head_dim, c.block_size, c.rope_base), persistent=False)
        self.post_init()

    # -- HF glue ------------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.transformer.wte = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Huginn's "takase" scales: std √(2/5d); output projections also / √(2 · expected depth)."""
        c = self.config
        std = math.sqrt(2 / (5 * c.n_embd))
        depth = c.n_layers_in_prelude + c.n_layers_in_coda + c.n_layers_in_recurrent_block * c.mean_recurrence
        out_std = std / math.sqrt(2 * depth)
        if isinstance(module, RMSNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, CausalSelfAttention):
            _trunc(module.Wqkv.weight, std)
            _trunc(module.proj.weight, out_std)
            if module.use_qk_bias:
                module.qk_bias.zero_()
        elif isinstance(module, GatedMLP):
            _trunc(module.fc.weight, std)
            _trunc(module.proj.weight, out_std)
            for lin in (module.fc, module.proj):
                if lin.bias is not None:
                    lin.bias.zero_()
        elif isinstance(module, nn.Embedding):
            _trunc(module.weight, std)
        elif module is getattr(getattr(self, "transformer", None), "adapter", None) or (
                module is getattr(self, "lm_head", None) and not c.tie_embeddings):
            _trunc(module.weight, std)
            if module.bias is not None:
                module.bias.zero_()
        if isinstance(module, RecurrentForCausalLM):
            module.rotary.copy_(rotary_table(c.head_dim, c.block_size, c.rope_base).to(module.rotary.device))

    # -- pieces -------------------------------------------------------------------------------
    def rotary_for(self, T: int) -> torch.Tensor:
        """The rotary table every block takes for a sequence of ``T`` tokens."""
        if T > self.config.block_size:
            from ..errors import ContextLengthError

            raise ContextLengthError(f"the input has {T} tokens but this model reads at most "
                                     f"{self.config.block_size}; shorten it.")
        return self.rotary[:, :T]

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scaled input embeddings (B, T, d), before the prelude."""
        return self.transformer.wte(input_ids) * self.config.embed_scale

    def prelude(self, embeds: torch.Tensor) -> torch.Tensor:
        """The embedded input ``e`` that is injected at every core iteration."""
        table = self.rotary_for(embeds.shape[1])
        x = embeds
        for block in self.transformer.prelude:
            x = block(x, table)
        return x

    def initial_state(self, like: torch.Tensor, *, scale: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """A random state shaped like ``like``: truncated normal (±3σ), σ = ``state_std · scale``,
        times √d (Huginn's "like-init"); zeros when σ is 0."""
        std = self.config.state_std * scale
        x = torch.empty(like.shape, dtype=torch.float32, device="cpu" if generator is not None else like.device)
        if std <= 0:
            return x.zero_().to(like.device, like.dtype)
        nn.init.trunc_normal_(x, 0.0, std, -3 * std, 3 * std, generator=generator)
        return (x * self.config.embed_scale).to(like.device, like.dtype)

    def core_input(self, state: torch.Tensor, injected: torch.Tensor) -> torch.Tensor:
        """What an iteration's first core block reads: adapter(concat(state, e))."""
        return self.transformer.adapter(torch.cat([state, injected], dim=-1))

    def core_step(self, state: torch.Tensor, injected: torch.Tensor) -> torch.Tensor:
        """One iteration: :meth:`core_input` → every core block."""
        table = self.rotary_for(state.shape[1])
        x = self.core_input(state, injected)
        for block in self.transformer.core_block:
            x = block(x, table)
        return x

    def coda(self, state: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) read from raw states: ln_f → coda → ln_f → lm_head. ``positions`` (N, 2:
        row, position): the logits there only, (N, V), the coda's last block run at those positions
        alone (training reads a few questions, not every token)."""
        table = self.rotary_for(state.shape[1])
        x = self.transformer.ln_f(state)
        blocks = list(self.transformer.coda)
        for i, block in enumerate(blocks):
            x = block(x, table, positions if i == len(blocks) - 1 else None)
        if positions is not None and not blocks:
            x = x[positions[:, 0], positions[:, 1]]
        return self.lm_head(self.transformer.ln_f(x)).float()

    def _steps(self, num_steps: Any) -> tuple[int, int]:
        if num_steps is None:
            if self.training:
                return sample_recurrence(self.config.mean_recurrence, self.config.mean_backprop_depth)
            return int(self.config.mean_recurrence), 0
        if isinstance(num_steps, (tuple, list)) or (isinstance(num_steps, torch.Tensor) and num_steps.numel() == 2):
            n, k = (int(v) for v in num_steps)
            if n < 0 or k < 0:
                raise InputError(f"num_steps=(n, k) needs n, k >= 0, got {tuple(num_steps)}.")
            return n, k
        r = int(num_steps)
        if r < 0:
            raise InputError(f"num_steps must be >= 0, got {r}.")
        return 0, r

    # -- forward ------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor | None = None, *, inputs_embeds: torch.Tensor | None = None,
                input_states: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_steps: Any = None, init_scale: float = 1.0,
                generator: torch.Generator | None = None, return_states: bool = False,
                logits_to_keep: int = 0, **kwargs: Any) -> RecurrentOutput:
        """Run prelude → ``num_steps`` core iterations → coda. ``input_states``: the initial
        state (default: random, from ``generator`` when given). ``labels`` are shifted inside
        (the HF convention; -100 is ignored). ``return_states``: every raw state, including the
        initial one."""
        if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
            raise InputError("this recurrent model has no KV cache; call it with use_cache=False.")
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            m = attention_mask.bool()
            if not bool((m[:, :-1] | ~m[:, 1:]).all()):
                raise InputError("left or inner padding is not supported; pad on the right (causal attention then "
                                 "needs no mask).")
        if inputs_embeds is None:
            if input_ids is None:
                raise InputError("pass input_ids or inputs_embeds.")
            inputs_embeds = self.embed(input_ids)
        e = self.prelude(inputs_embeds)
        n, k = self._steps(num_steps)
        x = input_states if input_states is not None else self.initial_state(e, scale=init_scale, generator=generator)
        states = [x] if return_states else None
        with torch.no_grad():
            for _ in range(n):
                x = self.core_step(x, e)
                if states is not None:
                    states.append(x)
        for _ in range(k):
            x = self.core_step(x, e)
            if states is not None:
                states.append(x)
        keep = x[:, -logits_to_keep:] if logits_to_keep else x
        logits = self.coda(x)
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                               labels[:, 1:].reshape(-1), ignore_index=-100)
        return RecurrentOutput(loss=loss, logits=logits, latent_states=self.transformer.ln_f(keep),
                               states=tuple(states) if states is not None else None,
                               num_steps_no_grad=n, num_steps_with_grad=k)


class HuginnForCausalLM(RecurrentForCausalLM):
    """:class:`RecurrentForCausalLM` for ``config.json`` files with ``model_type: huginn_raven``."""

    config_class = HuginnConfig


def _trunc(t: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(t, 0.0, std, -3 * std, 3 * std)


def register() -> None:
    """Register both model types with ``AutoConfig`` / ``AutoModelForCausalLM`` (idempotent), so
    ``explorer.load_model(folder)`` and ``from_pretrained`` find this code without remote code."""
    from transformers import AutoConfig, AutoModelForCausalLM

    for cfg, cls in ((RecurrentConfig, RecurrentForCausalLM), (HuginnConfig, HuginnForCausalLM)):
        try:
            AutoConfig.register(cfg.model_type, cfg)
        except ValueError:
            pass  # already registered
        try:
            AutoModelForCausalLM.register(cfg, cls)
        except ValueError:
            pass


register()


# -- Huginn-0125 --------------------------------------------------------------------------------------
#: Huginn-0125 parameter names that this implementation reads; everything else in its files is ignored.
HUGINN_PREFIXES = ("transformer.wte.", "transformer.prelude.", "transformer.adapter.", "transformer.core_block.",
                   "transformer.coda.", "transformer.ln_f.", "lm_head.")


def huginn_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a Huginn-0125 state dict to this implementation's names.

    The names are the same; a leading ``model.`` (some re-exports) is removed and the rotary
    buffer ``freqs_cis`` (recomputed here) is dropped."""
    out = {}
    for name, t in tensors.items():
        n = name[len("model."):] if name.startswith("model.transformer.") or name.startswith("model.lm_head.") else name
        if n.startswith(HUGINN_PREFIXES):
            out[n] = t
    return out


def load_huginn(path: str | Path, *, trust_remote_code: bool = False, device: str = "cpu",
                dtype: torch.dtype | str = torch.float32) -> RecurrentForCausalLM:
    """Load a local Huginn-0125 checkpoint folder (``config.json`` + ``*.safetensors``) into this
    project's implementation; ``trust_remote_code=True`` instead runs the code shipped with the
    checkpoint (``AutoModelForCausalLM`` with ``trust_remote_code``).

    Nothing is downloaded: get the weights once with ``hf download tomg-group-umd/huginn-0125``
    and pass the folder (or the snapshot folder in the HF cache)."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder} has no config.json; pass the local folder of the Huginn-0125 checkpoint "
                                 "(download it once with `hf download tomg-group-umd/huginn-0125`).")
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if trust_remote_code:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=dtype).to(device).eval()
    raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if raw.get("model_type") not in (HUGINN_MODEL_TYPE, MODEL_TYPE):
        raise InputError(f"{folder} holds a {raw.get('model_type')!r} model, not Huginn ({HUGINN_MODEL_TYPE!r}); "
                         "load it with explorer.load_model instead.")
    for key, want in (("injection_type", "linear"), ("block_class_name", "SandwichBlock"),
                      ("mlp_class_name", "GatedMLP"), ("nonlin_name", "SiLU")):
        if key in raw and raw[key] != want:
            raise InputError(f"{folder} uses {key}={raw[key]!r}; this implementation has {want!r} only. "
                             "Pass trust_remote_code=True to run the checkpoint's own code.")
    keep = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "auto_map", "torch_dtype",
                                                      "transformers_version", "dtype")}
    cfg = HuginnConfig(**keep)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelNotFoundError(f"{folder} has no *.safetensors weights; download them first.")
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            tensors.update(load_file(str(f)))
        except Exception as e:
            raise SaveFileError(f"{f} is not a readable safetensors file ({e}); download it again.") from e
    sd = huginn_state_dict(tensors)
    with torch.device("meta"):
        model = HuginnForCausalLM(cfg)
    if "lm_head.weight" not in sd and cfg.tie_embeddings:
        sd["lm_head.weight"] = sd.get("transformer.wte.weight")  # type: ignore[assignment]
    missing = sorted(set(model.state_dict()) - set(sd))
    unexpected = sorted(set(sd) - set(model.state_dict()))
    if missing or unexpected:
        raise SaveFileError(f"{folder} does not match the Huginn layout: missing {missing[:6]}, unexpected "
                            f"{unexpected[:6]}; pass trust_remote_code=True to run the checkpoint's own code.")
    bad = [k for k, p in model.state_dict().items() if tuple(p.shape) != tuple(sd[k].shape)]
    if bad:
        raise SaveFileError(f"{folder}: shapes differ from its config for {bad[:6]}; the config and weights "
                            "do not belong together.")
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight
    model.rotary = rotary_table(cfg.head_dim, cfg.block_size, cfg.rope_base)
    return model.to(device).eval()


def tiny_config(vocab_size: int = 64, **overrides: Any) -> RecurrentConfig:
    """A very small configuration for tests and demos (d=32, 2 heads, 1/2/1 blocks)."""
    kw: dict[str, Any] = dict(n_embd=32, n_heads=2, intermediate_size=64, block_size=256, vocab_size=vocab_size,
                              n_layers_in_prelude=1, n_layers_in_recurrent_block=2, n_layers_in_coda=1,
                              mean_recurrence=4, mean_backprop_depth=2)
    kw.update(overrides)
    return RecurrentConfig(**kw)


def build_model(config: RecurrentConfig, *, seed: int = 0) -> RecurrentForCausalLM:
    """A freshly initialised model (seeded)."""
    torch.manual_seed(seed)
    return RecurrentForCausalLM(config)


__all__ = ["RecurrentConfig", "HuginnConfig", "RecurrentForCausalLM", "HuginnForCausalLM", "RecurrentOutput",
           "sample_recurrence", "load_huginn", "huginn_state_dict", "register", "tiny_config", "build_model",
           "MODEL_TYPE", "HUGINN_MODEL_TYPE"]

_: Sequence[str] = __all__
