"""qimage.train: VAE training, flow-matching pretraining, flow-DPO and GRPO."""
