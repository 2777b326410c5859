"""The corpus generator lives in the package (the demo uses it); benches import it here."""

from bot.devtools.gen_corpus import generate_corpus

__all__ = ["generate_corpus"]
