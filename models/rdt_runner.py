"""RDTRunner: condition adaptors + the RDT backbone + diffusion training and sampling.

Bit-compatible with the released ``robotics-diffusion-transformer/rdt-1b`` runner (same parameter
names, shapes and numerics; tests/models/test_official_parity.py). Differences from the official code,
all opt-in or numerically neutral:

* ``state_mask`` may differ from ``action_mask`` (official code uses one mask for both, which
  zeroes action slots that are not also state slots);
* ``noise`` / ``timesteps`` / ``generator`` can be passed to the loss and the sampler (a test seam
  and the way to get reproducible validation samples);
* cross-attention keys/values of the fixed conditions are computed once per chunk at inference
  (``use_cond_cache``), identical results;
* gradient checkpointing (the official code raises NotImplementedError);
* ``compile_for_inference``: sampling through ``torch.compile`` with frozen weights (the plain
  module stays the parity reference).

``config["rdt"]["norm"]`` chooses the blocks' normalisation: ``release_var`` reproduces timm 1.0.3's
RmsNorm, which the released RDT-1B was trained with; ``rms`` a true RMSNorm (models/rdt/blocks.py).
"""
from __future__ import annotations

import re
import contextlib
import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

from models.rdt.model import RDT

# diffusers' schedulers call np.array() on torch tensors (at construction and in set_timesteps); numpy 2
# deprecates the __array__ signature torch implements. Harmless (known upstream): silenced exactly
# there, for that one message (a process-wide filter set at import is lost when a caller imports this
# module inside ``warnings.catch_warnings()``, and would hide the warning from other code too).
_NUMPY_ARRAY_COPY = "__array__ implementation doesn't accept a copy keyword"


@contextlib.contextmanager
def _quiet_scheduler():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NUMPY_ARRAY_COPY, category=DeprecationWarning)
        yield


def build_condition_adapter(projector_type: str, in_features: int, out_features: int) -> nn.Module:
    """``linear`` or ``mlp{N}x_gelu``: Linear(in, out) then (N-1) x [GELU(tanh), Linear(out, out)]."""
    if projector_type == "linear":
        return nn.Linear(in_features, out_features)
    match = re.match(r"^mlp(\d+)x_gelu$", projector_type)
    if not match:
        raise ValueError(f"Unknown adaptor type {projector_type!r}; expected 'linear' or 'mlp<N>x_gelu'")
    layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
    for _ in range(1, int(match.group(1))):
        layers += [nn.GELU(approximate="tanh"), nn.Linear(out_features, out_features)]
    return nn.Sequential(*layers)


class _CompiledNetwork:
    """A ``torch.compile``d RDT called with inductor's ``freezing`` switched on while it (re)compiles.

    Freezing is read from inductor's global config when a graph is compiled, which happens lazily at
    a call (``torch.compile(options={"freezing": True})`` does not switch it on: measured, the graph
    kept plain ``addmm`` calls). Frozen, fp32 linears become MKL packed GEMMs with the weights
    packed once (0.12 vs 0.21 ms for a 67 x 512 x 512 GEMM on 2 CPU cores)."""

    def __init__(self, compiled: nn.Module, freeze: bool):
        self.compiled, self.freeze = compiled, freeze

    def __call__(self, *args, **kwargs):
        if not self.freeze:
            return self.compiled(*args, **kwargs)
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(*args, **kwargs)


class RDTRunner(nn.Module):
    """Constructor arguments are those of the official runner, so its config.json builds it."""

    def __init__(
        self,
        *,
        action_dim: int,
        pred_horizon: int,
        config: dict,
        lang_token_dim: int,
        img_token_dim: int,
        state_token_dim: int,
        max_lang_cond_len: int,
        img_cond_len: int,
        lang_pos_embed_config=None,
        img_pos_embed_config=None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        rdt_cfg = config["rdt"]
        if "norm" not in rdt_cfg:
            raise ValueError("config['rdt'] lacks 'norm' (release_var for the released RDT-1B weights, or rms); "
                             "models.loading fills it in for checkpoints saved before the field existed")
        hidden = rdt_cfg["hidden_size"]
        self.model = RDT(
            output_dim=action_dim,
            horizon=pred_horizon,
            hidden_size=hidden,
            depth=rdt_cfg["depth"],
            num_heads=rdt_cfg["num_heads"],
            norm=rdt_cfg["norm"],
            max_lang_cond_len=max_lang_cond_len,
            img_cond_len=img_cond_len,
            lang_pos_embed_config=lang_pos_embed_config,
            img_pos_embed_config=img_pos_embed_config,
            dtype=dtype,
        )
        self.lang_adaptor = build_condition_adapter(config["lang_adaptor"], lang_token_dim, hidden)
        self.img_adaptor = build_condition_adapter(config["img_adaptor"], img_token_dim, hidden)
        # The state adaptor embeds [values (128) | mask (128)] for the state and every action token.
        self.state_adaptor = build_condition_adapter(config["state_adaptor"], state_token_dim * 2, hidden)

        ns = config["noise_scheduler"]
        # The schedulers hold plain tensors, not module state: build them on the CPU even inside a
        # `with torch.device("meta")` block (used to inspect the 1B geometry without memory).
        with torch.device("cpu"), _quiet_scheduler():
            self.noise_scheduler = DDPMScheduler(
                num_train_timesteps=ns["num_train_timesteps"],
                beta_schedule=ns["beta_schedule"],
                prediction_type=ns["prediction_type"],
                clip_sample=ns["clip_sample"],
            )
            self.noise_scheduler_sample = DPMSolverMultistepScheduler(
                num_train_timesteps=ns["num_train_timesteps"],
                beta_schedule=ns["beta_schedule"],
                prediction_type=ns["prediction_type"],
            )
        self.num_train_timesteps = ns["num_train_timesteps"]
        self.num_inference_timesteps = ns["num_inference_timesteps"]
        self.prediction_type = ns["prediction_type"]
        if self.prediction_type not in ("sample", "epsilon"):
            raise ValueError(f"Unsupported prediction_type {self.prediction_type!r}; expected 'sample' or 'epsilon'")
        self.pred_horizon = pred_horizon
        self.action_dim = action_dim
        self._compiled_model = None  # compile_for_inference(); a plain attribute: not in state_dict

        # Everything needed to rebuild this runner (saved as config.json by save_pretrained).
        self.init_kwargs = dict(
            action_dim=action_dim, pred_horizon=pred_horizon, config=config,
            lang_token_dim=lang_token_dim, img_token_dim=img_token_dim,
            state_token_dim=state_token_dim, max_lang_cond_len=max_lang_cond_len,
            img_cond_len=img_cond_len, lang_pos_embed_config=lang_pos_embed_config,
            img_pos_embed_config=img_pos_embed_config,
        )

    # ------------------------------------------------------------------ helpers
    def gradient_checkpointing_enable(self, enabled: bool = True) -> None:
        self.model.gradient_checkpointing = enabled

    def compile_for_inference(self, enabled: bool = True, freeze: bool = True, backend: str = "inductor") -> None:
        """Sample through ``torch.compile(self.model)`` (static shapes; a new batch size compiles
        again) in eval mode; the plain module stays the training path and the parity reference.

        ``freeze`` (inductor only) makes the weights constants of the compiled graph, which lets
        inductor fold and pre-process them; it may keep transformed copies, so the weights must not
        change afterwards (call this again after loading others). Compilation happens at the first
        chunk (~10-15 s on 2 CPU cores at the mid size).
        """
        compiled = None
        if enabled:
            compiled = _CompiledNetwork(torch.compile(self.model, dynamic=False, backend=backend),
                                        freeze=freeze and backend == "inductor")
        # A plain attribute: as a registered submodule the compiled module would add a second copy
        # of every key to state_dict() and follow .to() casts of its own.
        object.__setattr__(self, "_compiled_model", compiled)

    def adapt_conditions(self, lang_tokens, img_tokens, state_tokens):
        """lang (B, L, Dl), img (B, I, Di), state-action (B, T, 2*Ds) -> each (B, *, hidden)."""
        return self.lang_adaptor(lang_tokens), self.img_adaptor(img_tokens), self.state_adaptor(state_tokens)

    # ------------------------------------------------------------------ training
    def compute_loss(
        self,
        lang_tokens: torch.Tensor,
        lang_attn_mask: torch.Tensor,
        img_tokens: torch.Tensor,
        state_tokens: torch.Tensor,
        action_gt: torch.Tensor,
        action_mask: torch.Tensor,
        ctrl_freqs: torch.Tensor,
        state_mask: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        timesteps: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        return_active: bool = False,
        loss_weight: Optional[torch.Tensor] = None,
    ):
        """Diffusion loss (MSE over all horizon x action_dim entries, as the official runner);
        with ``return_active`` also the MSE over the action mask's slots (a logging metric, no grad,
        unweighted). ``loss_weight`` (Ds,): a per-slot weight on the squared error (None: the
        official plain MSE); the targets themselves are unchanged.

        lang_tokens (B, L, Dl); lang_attn_mask (B, L) bool (True = valid); img_tokens (B, I, Di);
        state_tokens (B, 1, Ds); action_gt (B, H, Ds); action_mask (B, 1, Ds) 0/1 (which action
        slots are used); ctrl_freqs (B,); state_mask (B, 1, Ds), defaults to action_mask;
        noise (B, H, Ds) and timesteps (B,) long, drawn here when not given.
        """
        B = action_gt.shape[0]
        device = action_gt.device
        if noise is None:
            noise = torch.randn(action_gt.shape, dtype=action_gt.dtype, device=device, generator=generator)
        if timesteps is None:
            timesteps = torch.randint(0, self.num_train_timesteps, (B,), device=device, generator=generator)
        timesteps = timesteps.long().to(device)
        noisy_action = self.noise_scheduler.add_noise(action_gt, noise, timesteps)

        state_mask = action_mask if state_mask is None else state_mask
        state_in = torch.cat([state_tokens, state_mask], dim=2)
        action_in = torch.cat([noisy_action, action_mask.expand(-1, noisy_action.shape[1], -1)], dim=2)
        # The network input in the conditions' dtype; the target (action_gt) keeps its own (float32).
        state_action = torch.cat([state_in, action_in.to(state_in.dtype)], dim=1)
        lang_cond, img_cond, state_action = self.adapt_conditions(lang_tokens, img_tokens, state_action)
        pred = self.model(state_action, ctrl_freqs, timesteps, lang_cond, img_cond, lang_mask=lang_attn_mask)
        target = action_gt if self.prediction_type == "sample" else noise
        if loss_weight is None:
            loss = F.mse_loss(pred.float(), target.float())
        else:
            loss = ((pred.float() - target.float()) ** 2 * loss_weight.to(device=pred.device, dtype=torch.float32)).mean()
        if not return_active:
            return loss
        # The same error on the action mask's used slots only: the 128-d mean above is diluted by the
        # ~118 slots that are always zero (~13x for LIBERO's 10 used slots).
        sq = (pred.float() - target.float()) ** 2 * action_mask.float()
        active = sq.sum() / (action_mask.float().sum() * pred.shape[1]).clamp_min(1)
        return loss, active.detach()

    def forward(self, *args, **kwargs):
        return self.compute_loss(*args, **kwargs)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_action(
        self,
        lang_tokens: torch.Tensor,
        lang_attn_mask: torch.Tensor,
        img_tokens: torch.Tensor,
        state_tokens: torch.Tensor,
        action_mask: torch.Tensor,
        ctrl_freqs: torch.Tensor,
        state_mask: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        use_cond_cache: bool = True,
        num_inference_steps: Optional[int] = None,
    ) -> torch.Tensor:
        """Sample an action chunk (B, H, action_dim) with DPM-Solver++ (5 steps by default).

        Same inputs as ``compute_loss`` minus the ground truth; ``noise`` is the initial noise.
        The result is multiplied by the action mask (unused slots are exactly 0).
        """
        state_mask = action_mask if state_mask is None else state_mask
        state_in = torch.cat([state_tokens, state_mask], dim=2)
        lang_cond, img_cond, state_traj = self.adapt_conditions(lang_tokens, img_tokens, state_in)
        return self.conditional_sample(lang_cond, lang_attn_mask, img_cond, state_traj, action_mask,
                                       ctrl_freqs, noise=noise, generator=generator,
                                       use_cond_cache=use_cond_cache,
                                       num_inference_steps=num_inference_steps)

    def conditional_sample(self, lang_cond, lang_attn_mask, img_cond, state_traj, action_mask, ctrl_freqs,
                           noise=None, generator=None, use_cond_cache=True, num_inference_steps=None):
        """The sampler's state, the solver arithmetic and the result are float32 whatever the model's
        dtype: the chunk holds absolute positions (~1 m), where bf16 is only good to +-4 mm. Only the
        network input is cast to the conditions' dtype."""
        device, dtype = state_traj.device, state_traj.dtype
        B = state_traj.shape[0]
        if noise is None:
            noise = torch.randn((B, self.pred_horizon, self.action_dim), dtype=torch.float32, device=device,
                                generator=generator)
        noisy_action = noise.to(device=device, dtype=torch.float32)
        action_mask = action_mask.expand(-1, self.pred_horizon, -1)
        net = self.model
        if self._compiled_model is not None and not self.training and not torch.is_grad_enabled():
            net = self._compiled_model  # compile_for_inference(); x=None is precompute_condition_kv
            cond_kv = net(None, None, None, lang_cond, img_cond) if use_cond_cache else None
        else:
            cond_kv = self.model.precompute_condition_kv(lang_cond, img_cond) if use_cond_cache else None

        scheduler = self.noise_scheduler_sample
        with _quiet_scheduler():
            scheduler.set_timesteps(num_inference_steps or self.num_inference_timesteps)
        for t in scheduler.timesteps:
            action_traj = self.state_adaptor(torch.cat([noisy_action, action_mask.float()], dim=2).to(dtype))
            state_action = torch.cat([state_traj, action_traj], dim=1)
            model_output = net(state_action, ctrl_freqs, t.unsqueeze(-1).to(device),
                               lang_cond, img_cond, lang_mask=lang_attn_mask, cond_kv=cond_kv)
            noisy_action = scheduler.step(model_output.float(), t, noisy_action).prev_sample.float()
        return noisy_action * action_mask.float()
