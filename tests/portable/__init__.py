"""The portable run: the lab installed and tested as Binder would, on a second distribution."""
