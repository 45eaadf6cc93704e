"""Helpers for the sharded strategies configured in ``configs/trainer/{ddp,fsdp}.yaml``.

FSDP (Zhao et al. 2023, "PyTorch FSDP: Experiences on Scaling Fully Sharded Data Parallel") shards a model unit by
unit; a unit per transformer block is the usual choice for ViT-style models (as in torchtitan and Lightning's FSDP
guide), so one block's parameters are gathered at a time.

Which classes are units is the model's to say, as Hugging Face's ``_no_split_modules`` is: a network class lists
its block classes in the class attribute ``fsdp_units`` (TimeSformer: ``(Block,)``), and the policy reads them from
the module it wraps, so this module imports no model family and a new model needs no entry here.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.distributed.fsdp.wrap import ModuleWrapPolicy, _Policy

FSDP_UNITS = "fsdp_units"  # the class attribute a network declares its FSDP unit classes in



def declared_units(cls: type) -> tuple[type[nn.Module], ...]:
    """The FSDP unit classes that the class ``cls`` declares (``fsdp_units``; empty when it declares none)."""
    return tuple(getattr(cls, FSDP_UNITS, ()))


def fsdp_units(model: nn.Module) -> set[type[nn.Module]]:
    """Every FSDP unit class declared by ``model`` or one of its submodules (a LightningModule holds its network)."""
    return {unit for module in model.modules() for unit in declared_units(type(module))}


class DeclaredUnitsPolicy(_Policy):
    """FSDP auto-wrap policy: one unit per module whose class the wrapped model declares (:func:`fsdp_units`), the
    rest in the root unit. The classes are read when FSDP wraps the model, which the config builds later than this
    policy."""

    def _run_policy(self, root_module: nn.Module, ignored_modules: set[nn.Module],
                    root_kwargs: dict[str, Any]) -> dict[nn.Module, dict[str, Any]]:
        return ModuleWrapPolicy(fsdp_units(root_module))._run_policy(root_module, ignored_modules, root_kwargs)


def block_wrap_policy() -> DeclaredUnitsPolicy:
    """FSDP auto-wrap policy with one unit per transformer block of the model it wraps (``trainer=fsdp``)."""
    return DeclaredUnitsPolicy()
