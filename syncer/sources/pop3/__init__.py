"""syncer.sources.pop3."""
