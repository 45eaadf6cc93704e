"""Models: the layers both sides share (``attention``, ``patch_embed``), recognition (``recognition/``: TimeSformer,
ViViT, the per-frame classifier, their LightningModule and pretrained loading), generation (``diffusion/``: the video
DiT, its autoencoder and their LightningModules), the metric library (``metrics/``), and what every run uses
(``run``, ``checkpointing``, ``optim``, ``preemption``, ``distributed``)."""
