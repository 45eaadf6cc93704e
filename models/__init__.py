"""Models: the layers both sides share (``attention``, ``patch_embed``), recognition (``recognition/``: TimeSformer,
ViViT, the per-frame classifier, their LightningModule and pretrained loading), generation (``diffusion/``: the video
DiT, its autoencoder and their LightningModules), the metric library (``metrics/``), the Lightning callbacks
(``callbacks/``), and what every run uses (``run``, ``checkpointing``, ``optim``, ``distributed``). The layers and
which may import which: ``docs/design.md``."""
