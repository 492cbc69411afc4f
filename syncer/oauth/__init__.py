"""OAuth2 sign-in for IMAP, POP3 and SMTP: token grants, refresh, storage and the SASL
XOAUTH2 / OAUTHBEARER messages.

Knows nothing of the archive; the protocol adapters receive a token provider
(a callable) and never see refresh tokens or client secrets.

Modules: :mod:`.sasl` (the SASL messages, the provider protocol, one retry with a
fresh token), :mod:`.endpoint` (the token endpoint over urllib), :mod:`.device`
(:rfc:`8628`), :mod:`.loopback` (authorization code + PKCE, :rfc:`7636`/:rfc:`8252`),
:mod:`.session` (the providers: stored tokens refreshed before expiry, or
``token_command``), :mod:`.store` (0600 file or keyring), :mod:`.providers`
(Google and Microsoft defaults), :mod:`.from_config` (the one place that reads
:mod:`syncer.config.oauth`), :mod:`.errors`.
"""
