"""Shipped weights of the concept-space models (data only; see explorer.concepts.autoencoder and .lcm)."""
