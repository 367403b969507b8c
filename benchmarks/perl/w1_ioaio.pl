#!/usr/bin/perl
# W1 with IO::AIO: 4 KiB aio_reads at random aligned offsets, --depth in flight,
# each callback submitting the next read. Default IO::AIO settings.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchCommon;
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or skip("not installed: IO::AIO") }

my %o = options(file => undef);
my $BS = 4096;
open my $fh, '<:raw', $o{file} or die "$o{file}: $!\n";
my $nblocks = int((-s $fh) / $BS);
srand 42;
my $N = 1 << 20;                     # precomputed offsets, cycled (as in Python)
my @off = map { int(rand $nblocks) * $BS } 1 .. $N;
my $mask = $N - 1;

my @buf = map { "\0" x $BS } 1 .. $o{depth};
my ($i, $done, $running, $deadline) = (0, 0, 1, 0);
my @cb;
for my $slot (0 .. $o{depth} - 1) {
    $cb[$slot] = sub {
        $_[0] == $BS or die "aio_read: $!\n";
        $done++;
        $running = 0 if !($done & 1023) && now() >= $deadline;   # as in Python
        aio_read($fh, $off[$i++ & $mask], $BS, $buf[$slot], 0, $cb[$slot]) if $running;
    };
}

my $pfd = IO::AIO::poll_fileno();
measure(sub {
    my ($budget) = @_;
    ($done, $running, $deadline) = (0, 1, now() + $budget);
    aio_read($fh, $off[$i++ & $mask], $BS, $buf[$_], 0, $cb[$_]) for 0 .. $o{depth} - 1;
    while (IO::AIO::nreqs()) {
        wait_readable($pfd);
        IO::AIO::poll_cb();
    }
    return ($done, $done * $BS);
}, \%o);
