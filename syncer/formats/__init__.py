"""Mail file formats read and written byte for byte: mbox (mboxrd), Maildir, .eml.

Pure file handling, no database: :mod:`syncer.transfer.export` and :mod:`syncer.transfer.importer`
feed these from and into the archive.

- :mod:`syncer.formats.mbox`: mboxrd writing and reading, exactly reversible
  (``>From`` quoting levels), plus the ``Status``/``X-Status`` flags and Google
  Takeout's ``X-Gmail-Labels`` of mbox files from elsewhere.
- :mod:`syncer.formats.maildir`: Maildir folders (directory tree written,
  Maildir++ read too), flags in the info suffix, keywords in a sidecar.
- :mod:`syncer.formats.eml`: one file per message, with a readable, safe name.
- :mod:`syncer.formats.safe_names`: folder names and subjects made into path
  components that cannot leave their directory.
"""
