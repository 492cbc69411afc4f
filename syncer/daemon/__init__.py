"""syncer.daemon."""
