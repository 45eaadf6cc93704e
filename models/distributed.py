"""Helpers for the sharded strategies configured in ``configs/trainer/{ddp,fsdp}.yaml``.

FSDP (Zhao et al. 2023, "PyTorch FSDP: Experiences on Scaling Fully Sharded Data Parallel") shards a model unit by
unit; a unit per transformer block is the usual choice for ViT-style models (as in torchtitan and Lightning's FSDP
guide), so one block's parameters are gathered at a time.
"""

from __future__ import annotations

from torch import nn
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from models.diffusion.dit import DiTBlock
from models.recognition.timesformer import Block
from models.recognition.vivit import EncoderBlock, FactorisedBlock

TRANSFORMER_BLOCKS: tuple[type[nn.Module], ...] = (Block, EncoderBlock, FactorisedBlock, DiTBlock)


def block_wrap_policy() -> ModuleWrapPolicy:
    """FSDP auto-wrap policy with one unit per transformer block of every model in the project."""
    return ModuleWrapPolicy(set(TRANSFORMER_BLOCKS))
