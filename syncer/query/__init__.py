"""The search query language: one parser, shared by search, retention, holds, digests,
forwards and export.

Why a package of its own: the language (words, phrases, field terms, AND/OR/NOT,
parentheses) is pure syntax and knows no SQL; the archive compiles the parsed
query into parameterized SQL for each backend (``syncer.archive.search``).
"""
