#!/usr/bin/env python3
"""A real SMTP server for the integration tests (aiosmtpd), on loopback.

Every accepted message is written to DIR/<n>.json as {"subject", "to", "from",
"text", "html" (decoded), "mail_from", "rcpt_tos", "data" (the raw message),
"tls", "authenticated"} (written to a
temporary name, then renamed, so a reader never sees half a file).

Recipients whose local part starts with "reject" are refused with
"550 5.1.1 mailbox unavailable", as a real server refuses an unknown mailbox.

    smtp_sink.py DIR [--tls none|starttls|tls --cert PEM --key PEM]
                     [--user NAME --password SECRET]

DIR is created if missing. Listens on 127.0.0.1 on a free port and prints
"PORT <n>" on stdout once it accepts connections. Never reads stdin, so it runs
in the background or under a service manager. Stops on SIGTERM or SIGINT
(Ctrl-C), or when the process that started it exits (a test killed without
clean-up leaves no sink behind).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        data = envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        message = email.message_from_string(data, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "subject": str(message["subject"] or ""),
            "to": str(message["to"] or ""),
            "from": str(message["from"] or ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": data,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        final = os.path.join(self.directory, f"{self.count}.json")
        with open(final + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(final + ".tmp", final)
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            getattr(auth_data, "login", None) == self.user
            and getattr(auth_data, "password", None) == self.password
        )
        return AuthResult(success=ok)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    args = p.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args.dir)
    kwargs = {}
    if args.user:
        kwargs["authenticator"] = Authenticator(args.user, args.password or "")
        kwargs["auth_required"] = True
    if args.tls == "starttls":
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    elif args.tls == "none":
        kwargs["auth_require_tls"] = False

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", **kwargs),
        host="127.0.0.1",
        port=0,
        ssl=context if args.tls == "tls" else None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)

    # Run until a signal, or until our parent is gone (we are re-parented).
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=1)
        except asyncio.TimeoutError:
            if parent != 1 and os.getppid() != parent:
                break
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
