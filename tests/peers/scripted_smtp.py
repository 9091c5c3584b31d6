"""A scriptable SMTP server for InboxGrove's integration tests (driven by tests/common/peers.rs).

Usage: scripted_smtp.py --listen IP:PORT --script SCRIPT.json --record DIR

SCRIPT.json maps a lower-cased recipient address to a list of RCPT replies; the Nth RCPT TO
for that recipient gets the Nth reply and the last reply repeats. A reply starting with "2"
accepts the recipient. Recipients not in the script are accepted with "250 2.1.5 OK". The
special key "DATA" scripts the replies to the end of DATA the same way (default "250 2.0.0 OK").

Everything is recorded in DIR so the test process can read it without talking to us:
- rcpt.log: one line per RCPT TO, "RECIPIENT<TAB>REPLY", appended and flushed at once;
- NNNNNN.eml: the raw DATA of each accepted message (dot-unstuffed, as received);
- NNNNNN.env: its envelope, "MAIL FROM:<...>" then one "RCPT TO:<...>" line per recipient.
  The .env is written first and each file is renamed into place, so a visible .eml is complete.
"""

import argparse
import asyncio
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Scripted:
    def __init__(self, script, record):
        self.script = {key.lower(): replies for key, replies in script.items()}
        self.record = record
        self.counts = {}
        self.stored = 0
        self.rcpt_log = open(os.path.join(record, "rcpt.log"), "a", encoding="utf-8")

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
            self.store(envelope)
        return reply

    def store(self, envelope):
        self.stored += 1
        stem = os.path.join(self.record, f"{self.stored:06}")
        lines = [f"MAIL FROM:<{envelope.mail_from}>"]
        lines += [f"RCPT TO:<{rcpt}>" for rcpt in envelope.rcpt_tos]
        write_atomically(stem + ".env", ("\n".join(lines) + "\n").encode("utf-8"))
        write_atomically(stem + ".eml", envelope.original_content or b"")


def write_atomically(path, data):
    with open(path + ".tmp", "wb") as file:
        file.write(data)
    os.rename(path + ".tmp", path)


async def serve(args):
    host, _, port = args.listen.rpartition(":")
    with open(args.script, encoding="utf-8") as file:
        handler = Scripted(json.load(file), args.record)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(
            handler,
            hostname="scripted.peer.test",
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=None,
            command_call_limit=None,
            loop=loop,
        )

    server = await loop.create_server(factory, host=host, port=int(port))
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
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
