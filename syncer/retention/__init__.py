"""syncer.retention."""
