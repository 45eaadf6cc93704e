"""Data: frame sampling, decord decoding, clip transforms, datasets and the Moving MNIST builder."""
