"""Plugin Lab served to a class by a real JupyterHub on one machine (``make hub``), and that
hub under load (``make test-hub``).

:mod:`.settings` holds what the parts share (``LABHUB_*``); :mod:`.setup` makes the hub's
folder (its Python, the proxy, the lab's template copy and caches); :mod:`.config` is the
JupyterHub configuration (the authenticators, the per-learner cgroup spawner, a learner's
copy of the lab, the idle culler), loaded by the hub's own Python only; :mod:`.cgroups`
limits and measures one learner; :mod:`.remote` runs a notebook in a learner's kernel and
compares its outputs; :mod:`.loadtest` drives N learners at once and reports what each used.
"""
