"""Verifies a message's DKIM signature with dkimpy, independently of InboxGrove's own code.

Usage: dkim_verify.py --nameserver IP --port PORT [--index N] < message

TXT lookups go to the given DNS server only (the tests' Knot on loopback). A message stored
with bare LF line endings (as Postfix stores Maildir files) is converted to CRLF first, as a
receiving MTA would see it on the wire. Prints "pass" or "fail" on the first line and dkimpy's
log after it; exits 0 on pass, 1 on fail, 2 when the message has no DKIM-Signature.
"""

import argparse
import io
import logging
import re
import sys

import dkim
import dns.exception
import dns.resolver


def txt_lookup(resolver):
    def lookup(name, timeout=5):
        qname = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            logging.getLogger("dkim").info("no TXT record at %s", qname)
            return None
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    return lookup


def to_crlf(message):
    return re.sub(rb"(?<!\r)\n", b"\r\n", message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nameserver", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--index", type=int, default=0, help="which DKIM-Signature (0 = topmost)")
    args = parser.parse_args()

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [args.nameserver]
    resolver.port = args.port
    resolver.timeout = 2
    resolver.lifetime = 5

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("dkim")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)

    message = to_crlf(sys.stdin.buffer.read())
    signatures = False
    try:
        verifier = dkim.DKIM(message, logger=logger, minkey=1024)
        signatures = verifier.present()
        passed = signatures and verifier.verify(idx=args.index, dnsfunc=txt_lookup(resolver))
    except (dkim.DKIMException, dns.exception.DNSException) as error:
        logger.error("%s", error)
        passed = False
    print("pass" if passed else "fail")
    print(log.getvalue(), end="")
    if not signatures:
        print("no DKIM-Signature header")
        return 2
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
