"""syncer.config."""
