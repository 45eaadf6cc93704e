"""Models: shared attention, TimeSformer, and the thin LightningModules that train them."""
