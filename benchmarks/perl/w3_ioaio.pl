#!/usr/bin/perl
# W3 with IO::AIO: 1 MiB sequential aio_reads (wrapping at end of file),
# --depth in flight, each callback submitting the next read.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchCommon;
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or skip("not installed: IO::AIO") }

my %o = options(file => undef, depth => 4);
my $BS = 1 << 20;
open my $fh, '<:raw', $o{file} or die "$o{file}: $!\n";
my $size = -s $fh;

my @buf = map { "\0" x $BS } 1 .. $o{depth};
my ($off, $done, $running, $deadline) = (0, 0, 1, 0);
my @cb;
sub submit {
    my ($slot) = @_;
    aio_read($fh, $off, $BS, $buf[$slot], 0, $cb[$slot]);
    $off += $BS;
    $off = 0 if $off >= $size;
}
for my $slot (0 .. $o{depth} - 1) {
    $cb[$slot] = sub {
        $_[0] == $BS or die "aio_read: $!\n";
        $done++;
        $running = 0 if now() >= $deadline;
        submit($slot) if $running;
    };
}

my $pfd = IO::AIO::poll_fileno();
measure(sub {
    my ($budget) = @_;
    ($done, $running, $deadline) = (0, 1, now() + $budget);
    submit($_) for 0 .. $o{depth} - 1;
    while (IO::AIO::nreqs()) {
        wait_readable($pfd);
        IO::AIO::poll_cb();
    }
    return ($done, $done * $BS);
}, \%o);
