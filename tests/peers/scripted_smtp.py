"""A scriptable SMTP server for InboxGrove's integration tests (driven by tests/common/peers.rs).

Usage: scripted_smtp.py --listen IP:PORT --script SCRIPT.json --record DIR [OPTIONS]

Options (none changes anything unless given):
- --tls-cert PEM --tls-key PEM: offer STARTTLS with this certificate, or, with --implicit-tls,
  speak TLS from the first byte (a relay on port 465);
- --auth USER:PASSWORD: offer AUTH PLAIN/LOGIN, accept only these credentials ("535 5.7.8" else)
  and require AUTH before MAIL (over implicit TLS, AUTH is allowed on the encrypted socket);
- --refuse-ehlo: answer EHLO with "502 5.5.2 EHLO not implemented" (HELO still works);
- --size N: advertise SIZE N (and enforce it); --no-8bitmime, --no-smtputf8: do not advertise
  (nor accept) those extensions.

SCRIPT.json maps a lower-cased recipient address to a list of RCPT replies; the Nth RCPT TO
for that recipient gets the Nth reply and the last reply repeats. A reply starting with "2"
accepts the recipient. Recipients not in the script are accepted with "250 2.1.5 OK". The
special key "DATA" scripts the replies to the end of DATA the same way (default "250 2.0.0 OK").

Everything is recorded in DIR so the test process can read it without talking to us:
- rcpt.log: one line per RCPT TO, "RECIPIENT<TAB>REPLY", appended and flushed at once;
- commands.log: one line per STARTTLS and AUTH command received, on any connection, whatever
  came of it ("STARTTLS", "AUTH PLAIN"; never the credentials), appended and flushed at once;
- NNNNNN.eml: the raw DATA of each accepted message (dot-unstuffed, as received);
- NNNNNN.env: its envelope, "MAIL FROM:<...>" then one "RCPT TO:<...>" line per recipient.
- NNNNNN.meta: JSON with the peer address ("peer": [ip, port]), the MAIL FROM parameters as
  received ("mail_options", upper-cased by aiosmtpd), whether the client said EHLO ("esmtp"),
  the AUTH login ("login", or null) and whether the session was encrypted ("tls").
  The .meta and .env are written first and each file is renamed into place, so a visible .eml
  is complete.
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Scripted:
    def __init__(self, script, record):
        self.script = {key.lower(): replies for key, replies in script.items()}
        self.record = record
        self.counts = {}
        self.stored = 0
        self.commands_log = open(os.path.join(record, "commands.log"), "a", encoding="utf-8")
        self.rcpt_log = open(os.path.join(record, "rcpt.log"), "a", encoding="utf-8")

    def log_command(self, line):
        self.commands_log.write(line + "\n")
        self.commands_log.flush()

    def next_reply(self, key, default):
        replies = self.script.get(key)
        if not replies:
            return default
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        return replies[min(seen, len(replies) - 1)]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.next_reply(address.lower(), "250 2.1.5 OK")
        self.rcpt_log.write(f"{address}\t{reply}\n")
        self.rcpt_log.flush()
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server, session, envelope):
        reply = self.next_reply("data", "250 2.0.0 OK")
        if reply.startswith("2"):
            self.store(envelope, session, server)
        return reply

    def store(self, envelope, session=None, server=None):
        self.stored += 1
        stem = os.path.join(self.record, f"{self.stored:06}")
        meta = {
            "peer": list(session.peer[:2]) if session is not None and session.peer else None,
            "mail_options": list(envelope.mail_options),
            "esmtp": bool(session.extended_smtp) if session is not None else None,
            "login": session.login_data.decode("utf-8", "replace")
            if session is not None and isinstance(session.login_data, bytes)
            else None,
            "tls": bool(server is not None and (server.implicit_tls or server._tls_protocol is not None)),
        }
        write_atomically(stem + ".meta", json.dumps(meta).encode("utf-8"))
        lines = [f"MAIL FROM:<{envelope.mail_from}>"]
        lines += [f"RCPT TO:<{rcpt}>" for rcpt in envelope.rcpt_tos]
        write_atomically(stem + ".env", ("\n".join(lines) + "\n").encode("utf-8"))
        write_atomically(stem + ".eml", envelope.original_content or b"")


class Options:
    """The optional behaviours (see the module doc), applied to each connection's SMTP object."""

    def __init__(self, args):
        self.refuse_ehlo = args.refuse_ehlo
        self.no_8bitmime = args.no_8bitmime
        self.no_smtputf8 = args.no_smtputf8
        self.implicit_tls = args.implicit_tls
        self.credentials = None
        if args.auth:
            user, _, password = args.auth.partition(":")
            self.credentials = (user.encode("utf-8"), password.encode("utf-8"))
        self.ssl_context = None
        if args.tls_cert:
            self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl_context.load_cert_chain(args.tls_cert, args.tls_key)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        accepted = (
            self.credentials is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login, auth_data.password) == self.credentials
        )
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)


class ExtendedSMTP(SMTP):
    """aiosmtpd's SMTP with the optional EHLO behaviours of `Options`, logging STARTTLS and AUTH."""

    def __init__(self, handler, options, **kwargs):
        self.options = options
        self.implicit_tls = options.implicit_tls
        super().__init__(handler, **kwargs)

    async def smtp_STARTTLS(self, arg):
        self.event_handler.log_command("STARTTLS")
        return await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg):
        mechanism = (arg or "").split(" ")[0].upper()
        self.event_handler.log_command(f"AUTH {mechanism}".strip())
        return await super().smtp_AUTH(arg)

    async def smtp_EHLO(self, hostname):
        if self.options.refuse_ehlo:
            await self.push("502 5.5.2 EHLO not implemented")
            return
        if not self.options.no_8bitmime and not self.options.no_smtputf8:
            return await super().smtp_EHLO(hostname)
        pushed = []
        real_push = self.push

        async def collect(line):
            pushed.append(line)

        self.push = collect
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self.push = real_push
        dropped = set()
        if self.options.no_8bitmime:
            dropped.add("8BITMIME")
        if self.options.no_smtputf8:
            dropped.add("SMTPUTF8")
        kept = [line for line in pushed if line[4:].split(" ")[0].upper() not in dropped]
        for index, line in enumerate(kept):
            last = index == len(kept) - 1
            await real_push(("250 " if last else "250-") + line[4:])


def write_atomically(path, data):
    with open(path + ".tmp", "wb") as file:
        file.write(data)
    os.rename(path + ".tmp", path)


async def serve(args):
    host, _, port = args.listen.rpartition(":")
    with open(args.script, encoding="utf-8") as file:
        handler = Scripted(json.load(file), args.record)
    loop = asyncio.get_running_loop()

    options = Options(args)

    def factory():
        return ExtendedSMTP(
            handler,
            options,
            hostname="scripted.peer.test",
            enable_SMTPUTF8=not options.no_smtputf8,
            decode_data=False,
            data_size_limit=args.size,
            command_call_limit=None,
            tls_context=None if options.implicit_tls else options.ssl_context,
            authenticator=options.authenticate if options.credentials else None,
            auth_required=options.credentials is not None,
            auth_require_tls=not options.implicit_tls,
            loop=loop,
        )

    ssl_context = options.ssl_context if options.implicit_tls else None
    server = await loop.create_server(factory, host=host, port=int(port), ssl=ssl_context)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {args.listen}", flush=True)
    await stop.wait()
    server.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--refuse-ehlo", action="store_true")
    parser.add_argument("--size", type=int)
    parser.add_argument("--no-8bitmime", action="store_true")
    parser.add_argument("--no-smtputf8", action="store_true")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
