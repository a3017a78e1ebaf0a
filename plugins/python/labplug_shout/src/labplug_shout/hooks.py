"""The same plugin for a pluggy host: a hook implementation marked with the host's name."""

import pluggy

hookimpl = pluggy.HookimplMarker("pluginlab")


@hookimpl
def transform(text: str) -> str:
    return text.upper() + "!"
