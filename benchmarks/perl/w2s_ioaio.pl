#!/usr/bin/perl
# W2s with IO::AIO: aio_stat of every file of the tree, --depth in flight,
# each callback submitting the next stat; passes repeated for --seconds.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchCommon;
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or skip("not installed: IO::AIO") }

my %o = options(tree => undef);
my ($paths) = read_manifest($o{tree});
my $n = @$paths;
my $nxt;
my $cb;
$cb = sub {
    $_[0] == 0 or die "aio_stat: $!\n";
    aio_stat($paths->[$nxt++], $cb) if $nxt < $n;
};

my $pfd = IO::AIO::poll_fileno();
sub one_pass {
    $nxt = 0;
    aio_stat($paths->[$nxt++], $cb) while $nxt < $o{depth} && $nxt < $n;
    while (IO::AIO::nreqs()) {
        wait_readable($pfd);
        IO::AIO::poll_cb();
    }
}
measure(sub { return (repeat_passes(\&one_pass, $_[0]) * $n, 0) }, \%o);
