"""syncer.mime."""
