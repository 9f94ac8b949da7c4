"""An HTTP proxy in front of an S3 server that misbehaves on request, for the fault tests.

    python3 s3_fault_proxy.py UPSTREAM_URL MODE_FILE PORT_FILE

Listens on a free loopback port (written to PORT_FILE) and forwards every request unchanged
(signatures stay valid: the Host header and the raw request target pass through). Before each
request it reads MODE_FILE (JSON, re-read every time, so a test can change it mid-run):
  {"fail": N}        the next N requests get 500 InternalError (counted down in the file)
  {"drop_parts": N}  the next N part uploads lose their connection halfway through the body
  {"delay": S}       every request waits S seconds first
  {"hold_parts": F}  part uploads wait while file F exists, after creating F + ".held"
"""
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A parent that starts us from a thread with signals blocked passes its mask on: unblock, so
# that SIGTERM stops us.
signal.pthread_sigmask(signal.SIG_UNBLOCK, range(1, signal.NSIG))
UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
MODE_FILE = sys.argv[2]
LOCK = threading.Lock()


def take(key):
    """Reads the mode; counts `key` down by one when it is a positive count. Returns its value."""
    with LOCK:
        try:
            with open(MODE_FILE) as f:
                mode = json.load(f)
        except (OSError, ValueError):
            return None
        value = mode.get(key)
        if isinstance(value, int) and value > 0:
            mode[key] = value - 1
            with open(MODE_FILE, "w") as f:
                json.dump(mode, f)
        return value


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        is_part = self.command == "PUT" and "partNumber=" in self.path
        delay = take("delay")
        if isinstance(delay, (int, float)) and delay > 0:
            time.sleep(delay)
        hold = take("hold_parts") if is_part else None
        if isinstance(hold, str):
            open(hold + ".held", "w").close()
            while os.path.exists(hold):
                time.sleep(0.05)
        if is_part and (take("drop_parts") or 0) > 0:
            self.rfile.read(length // 2)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-body (killed while held): forward nothing.
            self.close_connection = True
            return
        if (take("fail") or 0) > 0:
            error = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>"
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        headers = {k: v for k, v in self.headers.items()}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        # A HEAD answer keeps the object's length; a body's length is what is sent.
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
server.serve_forever()
