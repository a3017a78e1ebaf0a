# Plugin Lab's class hub: `make hub` starts JupyterHub with this file. The settings come from
# LABHUB_* variables (see labkit/hub/settings.py and the facilitator guide); the logic lives
# in labkit.hub.config, tested by `make test-hub`.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the lab, for labkit.hub

from labkit.hub.config import configure  # noqa: E402

configure(get_config())  # noqa: F821 (JupyterHub defines get_config)
