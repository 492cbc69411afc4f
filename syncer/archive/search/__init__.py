"""syncer.archive.search."""
