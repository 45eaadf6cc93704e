"""Models: shared layers (attention, patch embedding), TimeSformer, ViViT, the per-frame classifier, the video
DiT and its autoencoder (``diffusion/``), the metric library (``metrics/``), and the thin LightningModules that
train them."""
