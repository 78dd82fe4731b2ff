"""The GAN's error type."""


class GanError(ValueError):
    """A GAN configuration, checkpoint or input problem; the message names the file or field."""
