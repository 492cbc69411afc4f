"""syncer.sources.imap."""
