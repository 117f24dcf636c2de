#!/usr/bin/env python3
"""tests/handlers/hostile/fcgi-upstream.py: a hostile FastCGI application.

Listens on the unix socket given as its argument and answers each request
as the job's QUERY_STRING asks (mode=NAME): answers no application should
send, for tests/e2e/fastcgi-hostile.sh.  One thread per connection; a kept
connection (FCGI_KEEP_CONN) serves request after request.
"""
import os
import socket
import socketserver
import struct
import sys
import time
import urllib.parse

STDOUT, STDERR, END = 6, 7, 3


def rec(rtype, rid, content=b"", pad=0, version=1, clen=None):
    n = len(content) if clen is None else clen
    return struct.pack(">BBHHBB", version, rtype, rid, n, pad, 0) + \
        content + b"\0" * pad


def end(rid, status=0, clen=8):
    return rec(END, rid, struct.pack(">IB3x", 0, status)[:clen])


def stdout(rid, data):
    out = b""
    for i in range(0, len(data), 65535):
        out += rec(STDOUT, rid, data[i:i + 65535])
    return out


class Handler(socketserver.BaseRequestHandler):
    def read(self, n):
        b = b""
        while len(b) < n:
            c = self.request.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def one(self):
        params, rid, keep = b"", 1, False
        while True:
            v, t, rid, clen, pad, _ = struct.unpack(">BBHHBB", self.read(8))
            c = self.read(clen + pad)[:clen]
            if t == 1:
                keep = bool(c[2] & 1)
            elif t == 4:
                params += c
            elif t == 5 and clen == 0:
                break
        env, i = {}, 0
        while i < len(params):
            lens = []
            for _ in range(2):
                if params[i] & 0x80:
                    lens.append(struct.unpack(">I", params[i:i + 4])[0]
                                & 0x7fffffff)
                    i += 4
                else:
                    lens.append(params[i])
                    i += 1
            env[params[i:i + lens[0]].decode()] = \
                params[i + lens[0]:i + lens[0] + lens[1]].decode("latin-1")
            i += lens[0] + lens[1]
        q = urllib.parse.parse_qs(env.get("QUERY_STRING", ""))
        mode = q.get("mode", ["ok"])[0]
        with open(os.path.join(sys.argv[2], "conns"), "a") as f:
            f.write("%d %s\n" % (id(self), mode))
        return self.answer(mode, rid) and keep

    def answer(self, mode, rid):
        s = self.request
        ok = b"Status: 201 Created\r\nContent-Type: text/x-ok\r\n\r\nfine"
        if mode == "ok":
            s.sendall(stdout(rid, ok) + rec(STDOUT, rid) + end(rid))
            return True
        if mode == "padded":
            s.sendall(rec(STDOUT, rid, ok, pad=5) + rec(STDERR, rid, b"warn",
                      pad=3) + end(rid))
            return True
        if mode == "version":
            s.sendall(rec(STDOUT, rid, ok, version=2))
        elif mode == "past":
            s.sendall(rec(STDOUT, rid, b"Status: 200\r\n", clen=1000))
        elif mode == "otherid":
            s.sendall(stdout(rid, ok) + end(rid + 6))
            time.sleep(0.5)
        elif mode == "type":
            s.sendall(rec(99, rid, b"x"))
        elif mode == "endlen":
            s.sendall(stdout(rid, ok) + end(rid, clen=4))
            time.sleep(0.5)
        elif mode == "noheaders":
            s.sendall(stdout(rid, b"just a body") + end(rid))
        elif mode == "badstatus":
            s.sendall(stdout(rid, b"Status: abc\r\n\r\n") + end(rid))
        elif mode == "overloaded":
            s.sendall(end(rid, status=2))
        elif mode == "close":
            s.sendall(stdout(rid, b"Status: 200\r\n\r\nhalf an ans"))
        elif mode == "huge":
            chunk = stdout(rid, b"x" * 65535)
            s.sendall(stdout(rid, b"Status: 200\r\n\r\n"))
            try:
                for _ in range(1700):		# about 100 MB
                    s.sendall(chunk)
                s.sendall(end(rid))
            except OSError:
                pass
        elif mode == "stderr":
            try:
                for _ in range(64):		# 4 MiB of stderr, then fine
                    s.sendall(rec(STDERR, rid, b"e" * 65535))
                s.sendall(stdout(rid, ok) + end(rid))
            except OSError:
                pass
            return True
        elif mode == "drip":
            try:
                for b in b"Status: 200\r\n\r\n" + b"x" * 1000:
                    s.sendall(rec(STDOUT, rid, bytes([b])))
                    time.sleep(0.2)
            except OSError:
                pass
        return False

    def handle(self):
        try:
            while self.one():
                pass
        except (EOFError, OSError):
            pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    if os.path.exists(sys.argv[1]):
        os.unlink(sys.argv[1])
    Server(sys.argv[1], Handler).serve_forever()
