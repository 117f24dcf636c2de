#!/bin/bash
# bench-epoll-null: bench/epoll-null, the ceiling reference of
# bench/intake.sh, answers what fcgiq answers on the wire.  Driven on its
# own socket by tests/tools/fcgiclient (one request, kept connections,
# 256 KiB bodies, a body that arrives in two halves) and by a few lines of
# perl for what no client of ours sends: several requests and a management
# record in one write, and the same stream one byte per write.  A figure
# measured against a responder that answers wrongly would mean nothing.
. "$(dirname "$0")/../lib.sh"

NULL="$top_builddir/bench/epoll-null"
FCGI="$top_builddir/tests/tools/fcgiclient"
SOCK="$T/null.sock"
[ -x "$NULL" ] || skip_all "no $NULL (make bench/epoll-null)"
command -v perl >/dev/null || skip_all "no perl"

"$NULL" -n 2 -s "$SOCK" 2>"$T/null.log" &
PID=$!
track $PID
wait_for test -S "$SOCK" || bail "epoll-null did not start: $(cat "$T/null.log")"

fcgi() { "$FCGI" -s "$SOCK" -w 5 "$@"; }

fcgi -d hello >"$T/one.out"
check_eq "a POST: 202" "status 202" "$(head -1 "$T/one.out")"
check "... with the JSON body" grep -q '"state":"queued"' "$T/one.out"
check_eq "five requests on one kept connection: five 202s" 5 \
    "$(fcgi -k 5 -d again | grep -c '^status 202')"
check_eq "a 256 KiB body: 202" "status 202" "$(fcgi -D 262144 | head -1)"
check_eq "three 256 KiB bodies on one kept connection: three 202s" 3 \
    "$(fcgi -k 3 -D 262144 | grep -c '^status 202')"
check_eq "a body in two halves 200 ms apart: 202" "status 202" \
    "$(fcgi -D 100000 -S 200 | head -1)"

# The records of a stream: GET_VALUES, two kept requests, one that is not;
# written whole (-p) or one byte per write (-b).  Prints each record
# received as "TYPE ID", then "eof" when the responder closes.
stream() {
	perl -MIO::Socket::UNIX -e '
	my ($path, $mode) = @ARGV;
	my $s = IO::Socket::UNIX->new(Peer => $path) or die "connect: $!";
	sub rec { my ($t, $id, $c) = @_; $c //= "";
		pack("CCnnCC", 1, $t, $id, length($c), 0, 0) . $c }
	sub pairs { my %h = @_; join "", map { pack("CC", length $_,
		length $h{$_}) . $_ . $h{$_} } sort keys %h }
	my $out = rec(9, 0, pairs("FCGI_MPXS_CONNS", ""));
	for my $id (1, 2, 3) {
		my $body = "x" x (1000 * $id);
		$out .= rec(1, $id, pack("nCx5", 1, $id < 3 ? 1 : 0));
		$out .= rec(4, $id, pairs(REQUEST_METHOD => "POST",
		    CONTENT_LENGTH => length $body)) . rec(4, $id);
		$out .= rec(5, $id, $body) . rec(5, $id);
	}
	if ($mode eq "-p") {
		print $s $out;
	} else {
		$s->autoflush(1);
		for my $c (split //, $out) { syswrite($s, $c) == 1 or die; }
	}
	my ($buf, $got) = ("", "");
	while (sysread($s, $got, 65536)) { $buf .= $got; }
	while (length($buf) >= 8) {
		my ($v, $t, $id, $cl, $pl) = unpack("CCnnC", $buf);
		print "$t $id\n";
		substr($buf, 0, 8 + $cl + $pl) = "";
	}
	print "eof\n";
	' "$SOCK" "$1"
}
want="10 0
6 1
6 1
3 1
6 2
6 2
3 2
6 3
6 3
3 3
eof"
check_eq "a management record and three requests in one write: every answer, then the close" \
    "$want" "$(stream -p)"
check_eq "the same stream one byte per write: the same answers" \
    "$want" "$(stream -b)"
check "epoll-null still serves" kill -0 $PID
check_eq "... and answers" "status 202" "$(fcgi -d last | head -1)"
done_testing
