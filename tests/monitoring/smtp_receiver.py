"""A minimal SMTP server on loopback that keeps the messages it is sent (for the tests).

It speaks just enough SMTP for smtplib: greeting, EHLO/HELO, MAIL, RCPT, DATA, QUIT.
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from email.message import Message

__all__ = ["SmtpReceiver"]


class SmtpReceiver:
    """Receives mail on 127.0.0.1:<port>; ``messages`` holds them parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 keel-test ESMTP")
                while line := self.rfile.readline():
                    verb = line.decode().strip().split(" ", 1)[0].upper()
                    if verb == "DATA":
                        self.reply("354 end with .")
                        receiver.messages.append(message_from_bytes(self.data()))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

            def data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"smtp://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
