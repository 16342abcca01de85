"""Galleries: draw every model in a manifest, write an index, or check that nothing is stale.

A manifest (`models.toml`) holds one `[[model]]` table per diagram; `[defaults]` applies to
all. Each entry renders to `<name>.<format>` for each format, and the folder gets a README.md
(a table GitHub renders) and an index.html. Everything written is deterministic: with the
embedded renderer the bytes are the same on any machine, so CI can regenerate and compare.
"""

from fxviz.gallery.check import stale_files
from fxviz.gallery.draw import OUTCOMES, Drawn, draw_entry, index_files
from fxviz.gallery.manifest import Entry, read_manifest
from fxviz.gallery.workers import Bounds, StopSignals, draw_all

__all__ = [
    "OUTCOMES",
    "Bounds",
    "Drawn",
    "Entry",
    "StopSignals",
    "draw_all",
    "draw_entry",
    "index_files",
    "read_manifest",
    "stale_files",
]
