"""The SMTP client against a real server (aiosmtpd on loopback): TLS, AUTH, replies."""

from __future__ import annotations

import dataclasses
import inspect
import re
import smtplib
import socket
import ssl

import pytest

from syncer.errors import RelayError, RelayRejected, RelayUnavailable
from syncer.smtp.client import PASSWORD_MECHANISMS, SMTPRelay, SMTPSettings, to_crlf
from tests.servers.smtp import USERS, SMTPTestServer

MESSAGE = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n.leading dot\r\nbye\r\n"
USER, PASSWORD = next(iter(USERS.items()))

pytestmark = pytest.mark.integration


def settings(server: SMTPTestServer, security: str = "starttls", **extra: object) -> SMTPSettings:
    values: dict[str, object] = {
        "host": "localhost",
        "port": server.ports[security],
        "security": security,
        "ca_file": str(server.tls.ca),
        "timeout": 10.0,
        "label": "test",
    }
    values.update(extra)
    return SMTPSettings(**values)  # type: ignore[arg-type]


def send_one(config: SMTPSettings, data: bytes = MESSAGE, rcpts: tuple[str, ...] = ("b@x.net",)):  # type: ignore[no-untyped-def]
    with SMTPRelay(config) as relay:
        relay.connect()
        return relay.send("bounces@example.com", list(rcpts), data)


def test_starttls_with_the_strongest_mechanism_and_the_explicit_envelope_sender(
    smtp_server: SMTPTestServer,
) -> None:
    delivery = send_one(settings(smtp_server, username=USER, password=PASSWORD))
    assert delivery.reply.startswith("250 2.0.0 Ok: queued as ")
    [got] = smtp_server.received
    assert got.data == MESSAGE  # byte for byte, the leading dot unstuffed again
    assert got.mail_from == "bounces@example.com"  # not the header From
    assert got.rcpt_tos == ("b@x.net",)
    assert got.tls and got.listener == "starttls" and got.login == USER
    assert smtp_server.handler.logins == [("CRAM-MD5", USER)]


@pytest.mark.parametrize("mechanism", PASSWORD_MECHANISMS)
def test_each_password_mechanism_signs_in(smtp_server: SMTPTestServer, mechanism: str) -> None:
    send_one(settings(smtp_server, username=USER, password=PASSWORD, mechanisms=(mechanism,)))
    assert smtp_server.handler.logins == [(mechanism, USER)]


def test_a_server_without_the_strongest_mechanism_gets_the_next(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with SMTPTestServer(tmp_path, mechanisms=("LOGIN", "PLAIN")) as server:
        send_one(settings(server, username=USER, password=PASSWORD))
        assert server.handler.logins == [("PLAIN", USER)]


def test_implicit_tls(smtp_server: SMTPTestServer) -> None:
    send_one(settings(smtp_server, "tls", username=USER, password=PASSWORD))
    [got] = smtp_server.received
    assert got.tls and got.listener == "tls"


def test_plain_relay_without_login(smtp_server: SMTPTestServer) -> None:
    send_one(settings(smtp_server, "plain"))
    [got] = smtp_server.received
    assert not got.tls and got.login is None


def test_plain_refuses_to_send_a_password_unless_allowed(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(RelayError, match="unencrypted") as info:
        send_one(settings(smtp_server, "plain", username=USER, password=PASSWORD))
    assert not info.value.transient
    send_one(settings(smtp_server, "plain", username=USER, password=PASSWORD, allow_insecure=True))
    assert [r.login for r in smtp_server.received] == [USER]


def test_a_certificate_for_another_name_is_refused(smtp_server: SMTPTestServer) -> None:
    # The certificate names only "localhost"; dialling 127.0.0.1 must not pass.
    for security in ("starttls", "tls"):
        with pytest.raises(RelayError, match="did not verify") as info:
            send_one(settings(smtp_server, security, host="127.0.0.1"))
        assert not isinstance(info.value, RelayUnavailable | RelayRejected)
    assert smtp_server.received == []


def test_a_certificate_from_an_unknown_ca_is_refused(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(RelayError, match="did not verify"):
        send_one(settings(smtp_server, ca_file=None))  # the system store knows no test CA
    assert smtp_server.received == []


def test_verification_can_be_turned_off(smtp_server: SMTPTestServer) -> None:
    send_one(settings(smtp_server, "tls", host="127.0.0.1", tls_verify=False))
    assert len(smtp_server.received) == 1


def test_a_wrong_password_is_refused_for_good(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(RelayError, match="refused the login of 'relay'") as info:
        send_one(settings(smtp_server, username=USER, password="wrong"))
    assert not info.value.transient and "535" in info.value.message
    assert "wrong" not in str(info.value)


def test_a_4xx_reply_to_data_is_transient(smtp_server: SMTPTestServer) -> None:
    smtp_server.script("DATA", "451 4.3.0 Try again later")
    with pytest.raises(RelayUnavailable, match=re.escape("451 4.3.0 Try again later")):
        send_one(settings(smtp_server))
    assert smtp_server.received == []
    send_one(settings(smtp_server))  # the script was used up: the next attempt goes through
    assert len(smtp_server.received) == 1


def test_a_5xx_reply_to_data_is_permanent_and_the_connection_serves_on(
    smtp_server: SMTPTestServer,
) -> None:
    smtp_server.script("DATA", "554 5.7.1 Message refused by policy")
    with SMTPRelay(settings(smtp_server)) as relay:
        relay.connect()
        with pytest.raises(RelayRejected, match=re.escape("554 5.7.1 Message refused by policy")):
            relay.send("b@example.com", ["c@x.net"], MESSAGE)
        assert relay.connected
        relay.send("b@example.com", ["c@x.net"], MESSAGE)
    assert len(smtp_server.received) == 1


def test_mail_from_refused(smtp_server: SMTPTestServer) -> None:
    smtp_server.script("MAIL", "553 5.1.8 Sender address rejected")
    with pytest.raises(RelayRejected, match=re.escape("refused the sender: 553 5.1.8")):
        send_one(settings(smtp_server))


def test_one_recipient_refused_for_good_the_others_get_it(smtp_server: SMTPTestServer) -> None:
    smtp_server.script("RCPT", "550 5.1.1 No such user", address="gone@x.net")
    delivery = send_one(settings(smtp_server), rcpts=("gone@x.net", "here@x.net"))
    assert delivery.refused == {"gone@x.net": "550 5.1.1 No such user"}
    assert [r.rcpt_tos for r in smtp_server.received] == [("here@x.net",)]


def test_one_recipient_deferred_makes_the_whole_message_wait(smtp_server: SMTPTestServer) -> None:
    smtp_server.script("RCPT", "450 4.2.1 Mailbox busy", address="busy@x.net")
    with pytest.raises(RelayUnavailable, match=re.escape("450 4.2.1 Mailbox busy")):
        send_one(settings(smtp_server), rcpts=("busy@x.net", "here@x.net"))
    assert smtp_server.received == []


def test_every_recipient_refused(smtp_server: SMTPTestServer) -> None:
    smtp_server.script("RCPT", "550 5.1.1 No such user")
    with pytest.raises(RelayRejected, match=re.escape("refused every recipient: <a@x.net>: 550")):
        send_one(settings(smtp_server), rcpts=("a@x.net",))


def test_nobody_listening_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RelayUnavailable, match="Cannot talk to SMTP server 'test'"):
        send_one(SMTPSettings("127.0.0.1", port, "plain", timeout=5, label="test"))


def test_8bit_mail_is_announced_and_line_ends_become_crlf(smtp_server: SMTPTestServer) -> None:
    data = "Subject: café\n\nNaïve body\n".encode()
    send_one(settings(smtp_server), data=data)
    [got] = smtp_server.received
    assert "BODY=8BITMIME" in got.mail_options
    assert got.data == to_crlf(data) == "Subject: café\r\n\r\nNaïve body\r\n".encode()


def test_every_smtplib_error_is_mapped_to_a_relay_error() -> None:
    relay = SMTPRelay(SMTPSettings("h", 25, "plain"))
    samples: dict[type[BaseException], BaseException] = {
        smtplib.SMTPRecipientsRefused: smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}),
        smtplib.SMTPSenderRefused: smtplib.SMTPSenderRefused(451, b"later", "s@x"),
    }
    classes: list[type[BaseException]] = [
        cls
        for _name, cls in inspect.getmembers(smtplib, inspect.isclass)
        if issubclass(cls, smtplib.SMTPException)
    ]
    classes += [ssl.SSLError, ssl.SSLCertVerificationError, TimeoutError, OSError]
    for cls in classes:
        if cls in samples:
            exc = samples[cls]
        elif issubclass(cls, smtplib.SMTPResponseException):
            exc = cls(421, b"closing")
        else:
            exc = cls("boom")
        with pytest.raises(RelayError), relay._map_errors("testing"):
            raise exc


def test_starttls_is_required_when_asked_for(smtp_server: SMTPTestServer) -> None:
    # The plain listener offers no STARTTLS: nothing may go out in clear.
    config = dataclasses.replace(settings(smtp_server, "plain"), security="starttls")
    with pytest.raises(RelayError, match="does not offer STARTTLS; refusing to go on in clear"):
        send_one(config)
    assert smtp_server.received == []


def test_a_server_that_never_greets_times_out_as_transient() -> None:
    with socket.socket() as listener:  # the kernel accepts; nobody ever answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(RelayUnavailable, match=re.escape("did not answer within 0.5 s")):
            send_one(SMTPSettings("127.0.0.1", port, "plain", timeout=0.5, label="test"))
