"""Mail file formats read and written byte for byte: mbox (mboxrd), Maildir, .eml.

Pure file handling, no database: export and import (``syncer.transfer``) feed
these from and into the archive.
"""
