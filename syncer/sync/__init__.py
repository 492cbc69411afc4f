"""syncer.sync."""
