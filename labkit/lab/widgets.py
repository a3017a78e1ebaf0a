"""ipywidgets controls for the notebooks. Each one can also print what it shows, so that
nbval and a slide deck see the same information as the browser.

:class:`PluginPanel` picks the active plugin of a :class:`~labkit.inprocess.host.PluginHost`, swaps
it (reloads the file on disk) and shows the result of a call under it.
"""

from __future__ import annotations

from typing import Any

from ..errors import LabkitError
from ..inprocess.host import Plugin, PluginHost


class PluginPanel:
    """A dropdown of the host's loadable plugins, a "swap" button, and the result of
    ``transform(text)`` with the active plugin. ``widget`` is the ipywidgets box; printing
    the panel prints what it shows. A plugin is tried in a child process before it is
    loaded here (:meth:`PluginHost.trial`), so picking a crashing one is safe."""

    def __init__(
        self, host: PluginHost, text: str = "hello, plugins", *, start: str | None = None,
        **options: Any,
    ) -> None:
        import ipywidgets as widgets

        self.host = host
        self.text = text
        self.options = options
        self.plugin: Plugin | None = None
        self.result = ""
        ids = [c.id for c in host.discover() if c.loadable]
        self.picker = widgets.Dropdown(options=ids, description="plugin")
        self.swap = widgets.Button(description="swap in the file on disk",
                                   icon="refresh", layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.picker, self.swap]), self.output])
        self.picker.observe(lambda change: self.select(change["new"]), names="value")
        self.swap.on_click(lambda _button: self.reload())
        if ids:
            self.select(start if start in ids else ids[0])

    def select(self, pid: str) -> str:
        """Make ``pid`` the active plugin (loading and validating it) and call it."""
        if self.picker.value != pid:
            self.picker.value = pid  # the observer calls select again
            return self.result
        self.plugin = None
        refused = self._trial(pid)
        if refused:
            return self._show(refused)
        try:
            self.plugin = self.host.load(pid, **self.options)
        except LabkitError as exc:
            return self._show(f"{pid}: {exc}")
        return self.call()

    def reload(self) -> str:
        """Hot swap: reload the active plugin from its file and call it again."""
        if self.plugin is None:
            return self._show("no plugin is active")
        refused = self._trial(self.plugin.id)
        if refused:
            return self._show(f"{refused}; the old copy stays in service")
        try:
            self.plugin.reload()
        except LabkitError as exc:
            return self._show(f"{self.plugin.id}: swap refused, the old copy stays: {exc}")
        return self.call()

    def call(self) -> str:
        """Call the active plugin's transform on the panel's text."""
        if self.plugin is None:
            return self._show("no plugin is active")
        try:
            out = self.plugin.transform(self.text)
        except LabkitError as exc:
            return self._show(f"{self.plugin.id}: {exc}")
        swaps = f", swapped {self.plugin.reloads}x" if self.plugin.reloads else ""
        return self._show(f"{self.plugin.id} ({self.plugin.name}{swaps}): "
                          f"transform({self.text!r}) = {out!r}")

    def _trial(self, pid: str) -> str:
        """Call the plugin in a child process first: one that crashes or hangs is refused
        before it can take the kernel down. Returns the reason, or "" when it is fine."""
        outcome = self.host.trial(pid, self.text, timeout=10, **self.options)
        if outcome.ok or outcome.error is not None:  # an error is raised again in-process
            return ""
        return f"{pid}: refused, because in a trial in a child process {outcome.summary()}"

    def _show(self, line: str) -> str:
        import html

        self.result = line
        self.output.value = f"<pre>{html.escape(line)}</pre>"
        return line

    def __str__(self) -> str:
        return self.result

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = self.result
        return bundle
