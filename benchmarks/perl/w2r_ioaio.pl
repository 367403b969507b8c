#!/usr/bin/perl
# W2r with IO::AIO: per file aio_open -> aio_read (one read of MAX bytes) ->
# aio_close, --depth files in flight; passes repeated for --seconds.
# (Not aio_load: that does a synchronous fstat and no aio_close.)
# Note: IO::AIO's aio_close dup2()s a pipe over the fd; perl then closes the
# handle itself, synchronously, when the slot's next open replaces it.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchCommon;
use Fcntl qw(O_RDONLY);
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or skip("not installed: IO::AIO") }

my %o = options(tree => undef);
my $MAX = 16384;
my ($paths, $sizes) = read_manifest($o{tree});
my $n = @$paths;
my $total = 0;
$total += $_ for @$sizes;

my ($nxt, $nbytes) = (0, 0);
my (@fh, @buf, @on_open, @on_read, @on_close);
sub start {
    my ($slot) = @_;
    aio_open($paths->[$nxt++], O_RDONLY, 0, $on_open[$slot]) if $nxt < $n;
}
for my $slot (0 .. $o{depth} - 1) {
    $buf[$slot] = "\0" x $MAX;
    $on_open[$slot] = sub {
        $fh[$slot] = $_[0] or die "aio_open: $!\n";
        aio_read($fh[$slot], 0, $MAX, $buf[$slot], 0, $on_read[$slot]);
    };
    $on_read[$slot] = sub {
        $_[0] >= 0 or die "aio_read: $!\n";
        $nbytes += $_[0];
        aio_close($fh[$slot], $on_close[$slot]);
    };
    $on_close[$slot] = sub {
        $_[0] == 0 or die "aio_close: $!\n";
        start($slot);
    };
}

my $pfd = IO::AIO::poll_fileno();
sub one_pass {
    ($nxt, $nbytes) = (0, 0);
    start($_) for 0 .. $o{depth} - 1;
    while (IO::AIO::nreqs()) {
        wait_readable($pfd);
        IO::AIO::poll_cb();
    }
    $nbytes == $total or die "read $nbytes bytes, expected $total\n";
}
measure(sub {
    my $passes = repeat_passes(\&one_pass, $_[0]);
    return ($passes * $n, $passes * $total);
}, \%o);
