"""What the protocol adapters (IMAP and POP3 in ``syncer.sources``, SMTP in ``syncer.smtp``)
share and may not take from one another: the table that maps library exceptions to
syncer's errors (:mod:`syncer.protocols.errors`).

It sits below the adapters and ``syncer.oauth`` and imports nothing of syncer but
``syncer.errors``, so every adapter can use it without importing a sibling.
"""
