"""Recognition: TimeSformer (``timesformer``), ViViT models 1-4 (``vivit``), the per-frame classifier
(``frame_classifier``), the classifier LightningModule (``classifier_module``), and loading published or project
weights (``pretrained``, with timm image-ViT inflation in ``inflate``). The layers shared with the generator live one
level up (``models.attention``, ``models.patch_embed``)."""
