"""syncer.cli."""
