"""syncer.transfer."""
