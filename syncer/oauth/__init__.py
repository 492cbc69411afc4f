"""OAuth2 sign-in for IMAP, POP3 and SMTP: token grants, refresh, storage and the SASL
XOAUTH2 / OAUTHBEARER messages.

Knows nothing of the archive; the protocol adapters receive a token provider
(a callable) and never see refresh tokens or client secrets.
"""
