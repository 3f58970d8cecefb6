"""diffusion-circuits: circuit-level mechanistic interpretability of diffusion U-Nets."""

__version__ = "0.1.0"
