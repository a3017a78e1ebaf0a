"""labplug-shout: a transformer plugin, installed as a distribution with entry points."""


class Shout:
    """Upper case with an exclamation mark; the host calls ``Shout().transform(text)``."""

    name = "shout"

    def transform(self, text: str) -> str:
        return text.upper() + "!"
