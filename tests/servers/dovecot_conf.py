"""The ``dovecot.conf`` that :class:`tests.servers.dovecot.DovecotServer` runs with.

A pure function from the server's directories and options to the text of a
complete Dovecot 2.3 configuration; nothing from ``/etc/dovecot`` is included,
so the packaged service's settings cannot leak into tests. Why each unusual
setting is there:

- ``default_login_user``/``default_internal_user`` name the accounts Debian's
  dovecot-core package creates (``dovenull``, ``dovecot``).
- ``disable_plaintext_auth = no``: syncer refuses plaintext logins unless its
  config allows them; the server must accept them so that refusal is testable.
- passwd-file passdb and userdb with ``scheme=PLAIN``, one file per user
  (``.../passwd/%u``): plaintext passwords make APOP possible, and per-user
  files let tests add users live (Dovecot re-checks a passwd-file at most once
  a second, which a shared file would turn into a race).
- ``first_valid_uid``..``last_valid_uid`` admit exactly the mail uid (9000).
- ``LAYOUT=fs``: Maildir++ refuses dots in folder names.
- ``acl`` + ``imap_acl`` with ``acl_shared_dict``: the ``shared/<user>/`` namespace
  lists only what other users granted (:rfc:`4314`).
- With ``virtual`` (off by default): Dovecot's ``virtual`` plugin and a ``Labels/``
  namespace of saved searches, the base of the Gmail double (tests/servers/gmail.py).
- ``auth_failure_delay = 0``: wrong-password tests would otherwise wait 2 s.
- With ``oauth2_introspection_url`` (off by default): an ``oauth2`` passdb for the
  XOAUTH2 and OAUTHBEARER mechanisms only, placed before the passwd-file one, that
  POSTs each bearer token to that :rfc:`7662` endpoint and accepts it when the
  answer says ``"active": true`` and ``"username"`` is the user signing in; and no
  authentication penalty (anvil's), since those tests fail logins on purpose.

Public API: :func:`render_config`, :func:`render_oauth2_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.servers.dovecot import DovecotServer, Ports

#: Mailboxes that get a SPECIAL-USE attribute (:rfc:`6154`) once they exist.
SPECIAL_USE_MAILBOXES = ("Sent", "Archive", "Trash", "Drafts")

#: Debian's DH parameters; Dovecot 2.3 warns without ``ssl_dh``.
_DH_PARAMS = Path("/usr/share/dovecot/dh.pem")


def render_config(server: DovecotServer, ports: Ports, uid: int = 9000, gid: int = 9000) -> str:
    """The configuration text for *server* listening on *ports*, mail owned by uid:gid."""
    tls = server.tls
    mechanisms = "plain login apop" if server.apop else "plain login"
    oauth2_passdb = ""
    if server.oauth2_introspection_url is not None:
        mechanisms += " xoauth2 oauthbearer"
        # The anvil listener switched off disables the per-IP authentication penalty
        # (2, 4, 8 ... s after each failure): refused-token tests fail on purpose.
        oauth2_passdb = (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {server.oauth2_config_path}\n}}\n"
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
        )
    # auto = no: the attribute shows in LIST once a client creates the mailbox.
    special = "\n".join(
        f"  mailbox {name} {{\n    special_use = \\{name}\n    auto = no\n  }}"
        for name in SPECIAL_USE_MAILBOXES
    )
    plugins = "acl virtual" if server.virtual else "acl"
    virtual = ""
    if server.virtual:
        special += '\n  mailbox "[Gmail]/All Mail" {\n    special_use = \\All\n    auto = no\n  }'
        # Gmail's label folders as saved searches over All Mail (tests/servers/gmail.py).
        virtual = (
            "namespace labels {\n  type = private\n  separator = /\n  prefix = Labels/\n"
            "  location = virtual:~/virtual:LAYOUT=fs\n  subscriptions = no\n  list = yes\n}\n"
        )
    capability = f"imap_capability = {server.capabilities}\n" if server.capabilities else ""
    dh = f"ssl_dh = <{_DH_PARAMS}" if _DH_PARAMS.exists() else ""
    return f"""\
# Written by tests/servers/dovecot.py; regenerated on every start.
base_dir = {server.run_dir}
state_dir = {server.state_dir}
log_path = {server.log_path}
instance_name = syncer-test-{ports.imap}
protocols = imap pop3
listen = 127.0.0.1
default_login_user = dovenull
default_internal_user = dovecot

ssl = yes
ssl_cert = <{tls.cert}
ssl_key = <{tls.key}
{dh}
ssl_min_protocol = TLSv1.2
# syncer refuses plaintext logins unless told otherwise; the server must allow them
# so that refusal can be tested.
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_verbose = yes

{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {server.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {server.passwd_dir}/%u
}}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}

mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
mail_plugins = $mail_plugins {plugins}
mail_max_userip_connections = 1000

namespace inbox {{
  type = private
  separator = /
  prefix =
  inbox = yes
{special}
}}
{virtual}namespace shared {{
  type = shared
  separator = /
  prefix = shared/%%u/
  location = maildir:%%h/Maildir:LAYOUT=fs:INDEXPVT=~/shared/%%u
  subscriptions = no
  list = children
}}
namespace public {{
  type = public
  separator = /
  prefix = Public/
  location = maildir:{server.public_dir}:LAYOUT=fs:INDEXPVT=~/public
  subscriptions = no
  list = children
}}
plugin {{
  acl = vfile
  acl_shared_dict = file:{server.state_dir}/acl/shared-mailboxes.db
}}

protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
{capability}
protocol pop3 {{
  pop3_no_flag_updates = {"yes" if server.pop3_no_flag_updates else "no"}
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {ports.imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ports.imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {ports.pop3}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {ports.pop3s}
    ssl = yes
  }}
}}
"""


def render_oauth2_config(server: DovecotServer) -> str:
    """The oauth2 passdb's settings file: token introspection by POST (:rfc:`7662`)."""
    return f"""\
# Written by tests/servers/dovecot.py for the oauth2 passdb.
introspection_mode = post
introspection_url = {server.oauth2_introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""
