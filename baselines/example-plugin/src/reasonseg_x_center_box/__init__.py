"""Example reasonseg-x plugin: a centred box prior (see README.md)."""
