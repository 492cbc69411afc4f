"""syncer.smtp."""
